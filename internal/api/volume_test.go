package api_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/api/apitest"
)

func TestVolumeDefaults(t *testing.T) {
	a := apitest.VolumeApp()
	api.SetDefaults(a)
	if m := a.Spec.Template.Volumes[2].Secret.DefaultMode; m == nil || *m != 0o400 {
		t.Errorf("secret defaultMode = %v, want 0400", m)
	}
	if m := a.Spec.Template.Volumes[3].ConfigMap.DefaultMode; *m != 0o444 {
		t.Errorf("configMap defaultMode = %o, want the one set, 0444", *m)
	}
}

func TestWritesClaim(t *testing.T) {
	a := apitest.VolumeApp()
	if !api.WritesClaim(&a.Spec.Template, "db-data") {
		t.Error("a read-write mount of the claim: want WritesClaim true")
	}
	a.Spec.Template.Containers[0].VolumeMounts[0].ReadOnly = true
	if api.WritesClaim(&a.Spec.Template, "db-data") {
		t.Error("only a readOnly mount: want WritesClaim false")
	}
	if got := api.ClaimNames(a.Spec.Template.Volumes); !cmp.Equal(got, []string{"db-data"}) {
		t.Errorf("ClaimNames = %q", got)
	}
}
