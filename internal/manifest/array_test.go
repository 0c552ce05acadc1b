package manifest

import (
	"strings"
	"testing"

	"slipway.dev/slipway/internal/api"
)

// A fixed-size list in status (what get -o yaml prints) decodes, and one
// longer than its type holds is an error rather than cut short.
func TestFixedSizeList(t *testing.T) {
	doc := `apiVersion: slipway.dev/v1
kind: App
metadata: {name: hello}
spec:
  template: {containers: [{name: web, command: [x]}]}
status:
  rollout:
    revision: 2
    state: Completed
    baseline:
      - {revision: 1, requests: [0, 0, 7, 0, 0, 1]}
`
	docs, err := Decode("a.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got := docs[0].Object.(*api.App).Status.Rollout.Baseline[0].Requests; got != [6]int64{0, 0, 7, 0, 0, 1} {
		t.Errorf("requests = %v", got)
	}
	_, err = Decode("a.yaml", []byte(strings.Replace(doc, "[0, 0, 7, 0, 0, 1]", "[0, 0, 7, 0, 0, 1, 9]", 1)))
	if err == nil || !strings.Contains(err.Error(), "a.yaml:11: App \"hello\": status.rollout.baseline[0].requests: Invalid value: a list: must be a list of at most 6 items") {
		t.Errorf("seven counters: %v", err)
	}
}
