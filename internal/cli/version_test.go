package cli

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/clitest"
)

func TestVersion(t *testing.T) {
	a := clitest.Start(t, nil, nil, newRoot)
	out, errOut, code := a.RunOut(t, "version")
	if code != 0 || errOut != "" {
		t.Fatalf("version: code %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var keys []string
	for _, l := range lines {
		k, _, _ := strings.Cut(l, ": ")
		keys = append(keys, k)
	}
	want := "Client Version,Client Commit,Client Go Version,Server Version,Server Commit,Server Go Version,API Version"
	if strings.Join(keys, ",") != want || !strings.Contains(out, "Go Version: "+runtime.Version()) || !strings.HasSuffix(out, "API Version: "+api.Version+"\n") {
		t.Errorf("version printed:\n%s", out)
	}

	var v struct {
		ClientVersion struct{ Version, GoVersion, APIVersion string }
		ServerVersion struct{ Version, GoVersion, APIVersion string }
	}
	out, _, code = a.RunOut(t, "version", "-o", "json")
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 || v.ClientVersion.Version != Version() || v.ServerVersion.Version != "dev" || v.ServerVersion.APIVersion != api.Version {
		t.Errorf("version -o json: %v %+v\n%s", err, v, out)
	}
	out, _, code = a.RunOut(t, "version", "--client", "-o", "yaml")
	var y map[string]map[string]string
	if err := yaml.Unmarshal([]byte(out), &y); err != nil || code != 0 || y["clientVersion"]["goVersion"] != runtime.Version() || y["serverVersion"] != nil {
		t.Errorf("version --client -o yaml: %v\n%s", err, out)
	}
	if out, _, code := a.RunOut(t, "--version"); code != 0 || out != "slipway "+Version()+"\n" {
		t.Errorf("--version: %d %q", code, out)
	}
	if _, errOut, code := a.RunOut(t, "version", "-o", "xml"); code != 1 || !strings.Contains(errOut, `unsupported output format "xml"`) {
		t.Errorf("version -o xml: %d %q", code, errOut)
	}
}
