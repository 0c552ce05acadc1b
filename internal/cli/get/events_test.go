package get

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/clitest"
)

func TestEvents(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	a.Create(t, clitest.NewApp("hello", 1))
	now := time.Now()
	for _, ev := range []*api.Event{
		{Metadata: api.ObjectMeta{Name: "e1"}, InvolvedObject: api.ObjectReference{Kind: "App", Name: "hello"}, Type: api.EventNormal, Reason: "RevisionCreated", Message: "created revision 1", LastTimestamp: now.Add(-time.Minute)},
		{Metadata: api.ObjectMeta{Name: "e2"}, InvolvedObject: api.ObjectReference{Kind: "Pod", Name: "hello-1-abcde"}, Type: api.EventWarning, Reason: "Failed", Message: `container web: executable "x" not found in the pod's PATH`, LastTimestamp: now},
	} {
		a.Create(t, ev)
	}
	out, errOut, code := a.RunOut(t, "events")
	if l := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || errOut != "" || len(l) != 3 || !strings.Contains(l[1], "RevisionCreated") || !strings.Contains(l[2], "pod/hello-1-abcde") {
		t.Errorf("events: code %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	out, _, code = a.RunOut(t, "events", "--for", "app/hello", "--no-headers")
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "app/hello") {
		t.Errorf("events --for app/hello: code %d:\n%s", code, out)
	}
	_, errOut, code = a.RunOut(t, "events", "--for", "app/nothing")
	if code != 0 || errOut != "No events found about app/nothing in project \"default\".\n" {
		t.Errorf("events about nothing: code %d, stderr %q", code, errOut)
	}

	// -w prints what comes, and Ctrl-C ends it with status 0.
	ctx, cancel := context.WithCancel(t.Context())
	w := clitest.NewSignalWriter("RevisionCreated")
	var werr bytes.Buffer
	done := make(chan int)
	go func() { done <- a.Run(t, ctx, w, &werr, "events", "--for", "app/hello", "-w") }()
	<-w.Seen
	a.Create(t, &api.Event{Metadata: api.ObjectMeta{Name: "e3"}, InvolvedObject: api.ObjectReference{Kind: "App", Name: "hello"}, Type: api.EventNormal, Reason: "RolloutStarted", Message: "rolling out revision 2"})
	select {
	case <-w.Wait("RolloutStarted"):
	case <-time.After(10 * time.Second):
		t.Fatal("events -w did not print the new event")
	}
	cancel()
	if code := <-done; code != 0 || werr.String() != "" {
		t.Errorf("events -w after Ctrl-C: code %d, stderr %q", code, werr.String())
	}
}
