package hooks

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/events"
	"slipway.dev/slipway/internal/node"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/runtime"
	"slipway.dev/slipway/internal/runtime/process"
)

// machine is a real node agent over the process driver, on a registry:
// what runs hook pods in `slipway up`.
type machine struct {
	t      *testing.T
	reg    *registry.Registry
	dir    string
	agent  *node.Agent
	cancel context.CancelFunc
	done   chan struct{}
}

func newMachine(t *testing.T) *machine {
	m := &machine{t: t, reg: newRegistry(t), dir: t.TempDir()}
	m.start()
	t.Cleanup(func() { m.stop(true) })
	return m
}

// start runs an agent on the machine's runtime directory: a Slipway
// restart when called again.
func (m *machine) start() {
	d, err := process.New(process.Options{Dir: filepath.Join(m.dir, "runtime"), IPRange: netip.MustParsePrefix("127.26.0.0/24")})
	if err != nil {
		m.t.Fatal(err)
	}
	clk := clock.Real{}
	m.agent = node.New(node.Options{
		Reg: m.reg, Driver: d, Clock: clk,
		Events:  &events.Recorder{Reg: m.reg, Source: "node", Clock: clk},
		BaseEnv: []string{"PATH=" + os.Getenv("PATH")},
	})
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done = cancel, make(chan struct{})
	go func() { m.agent.Run(ctx); close(m.done) }()
}

// stop ends the agent; without stopPods its pods keep running (kill -9).
func (m *machine) stop(stopPods bool) {
	if m.cancel == nil {
		return
	}
	m.cancel()
	<-m.done
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.agent.Shutdown(ctx, stopPods); err != nil {
		m.t.Errorf("shutdown: %v", err)
	}
	m.cancel = nil
}

// runner is what server wires: the registry only. The last log lines
// come from the pods' status, where the node agent keeps them.
func (m *machine) runner() *Runner {
	return &Runner{Reg: m.reg}
}

// until calls Ensure until the run ended.
func (m *machine) until(r *Runner, app *api.App, rev *api.Revision, kind string, attempt int) Status {
	m.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := r.Ensure(context.Background(), app, rev, kind, attempt)
		if err != nil {
			m.t.Fatal(err)
		}
		if st.Ended() {
			return st
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("%s hook attempt %d has not ended after 30s: %+v", kind, attempt, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func shHook(script string, policy string, timeout int32) *api.Hook {
	return &api.Hook{Command: []string{"sh", "-c", script}, FailurePolicy: policy, TimeoutSeconds: timeout}
}

// TestHooksOnRealNode runs hooks as real processes: a success, a failure
// retried under Retry, a timeout, each reported with its exit and logs.
func TestHooksOnRealNode(t *testing.T) {
	m := newMachine(t)
	r := m.runner()
	hook := shHook(`echo "migrating in $MODE mode ($SLIPWAY_HOOK hook of revision $SLIPWAY_REVISION)"; echo done`, api.HookAbort, 30)
	hook.Env = []api.EnvVar{{Name: "MODE", Value: "migrate"}}
	app, rev := testApp(t, m.reg, hook, 1)
	app.Spec.Template.Containers[0].Command = nil // the hook's command is what runs

	st := m.until(r, app, rev, Pre, 1)
	if st.Phase != Succeeded || st.ExitCode == nil || *st.ExitCode != 0 {
		t.Errorf("status %+v, want Succeeded with exit code 0", st)
	}
	if want := "exit code 0; last log lines:\nmigrating in migrate mode (pre hook of revision 1)\ndone"; st.Message != want {
		t.Errorf("message %q, want %q", st.Message, want)
	}
	if got := Decide(hook, st, 1); got != Proceed {
		t.Errorf("Decide = %s, want Proceed", got)
	}

	// A failure under Retry: the next attempt is a new pod.
	failing := shHook(`echo connecting; echo "ERROR: table exists" >&2; exit 4`, api.HookRetry, 0)
	app.Spec.Strategy.Hooks.Pre = failing
	rev2 := *rev
	rev2.Spec.Number = 2
	st = m.until(r, app, &rev2, Pre, 1)
	want := "exit code 4; last log lines:\nconnecting\nERROR: table exists"
	if st.Phase != Failed || st.Reason != "Error" || st.Message != want {
		t.Errorf("status %+v, want Failed, Error, message %q", st, want)
	}
	if got := Decide(failing, st, 1); got != Retry {
		t.Errorf("Decide = %s, want Retry", got)
	}
	st2 := m.until(r, app, &rev2, Pre, 2)
	if st2.Pod != "shop-2-hook-pre-2" || st2.Phase != Failed {
		t.Errorf("second attempt %+v", st2)
	}

	// A timeout stops the hook; its logs stay.
	slow := shHook(`echo "step 1"; exec sleep 60`, api.HookAbort, 1)
	app.Spec.Strategy.Hooks.Pre = slow
	rev3 := *rev
	rev3.Spec.Number = 3
	st = m.until(r, app, &rev3, Pre, 1)
	want = "the pod ran longer than its activeDeadlineSeconds (1s) and was stopped; killed by signal 15 (exit code 143); last log lines:\nstep 1"
	if st.Phase != Failed || st.Reason != ReasonDeadlineExceeded || st.Message != want {
		t.Errorf("status %+v, want Failed DeadlineExceeded with message %q", st, want)
	}
	if got := Decide(slow, st, 1); got != Abort {
		t.Errorf("Decide = %s, want Abort", got)
	}
}

// TestHookRunsOnceAcrossRestarts: a hook running when Slipway is killed
// is adopted by the next Slipway and never started a second time, however
// often the deploy controller calls Ensure.
func TestHookRunsOnceAcrossRestarts(t *testing.T) {
	m := newMachine(t)
	dir := t.TempDir()
	runs, gate := filepath.Join(dir, "runs"), filepath.Join(dir, "gate")
	hook := shHook("echo run >> "+runs+"; echo started; while [ ! -f "+gate+" ]; do sleep 0.05; done; echo finished", api.HookAbort, 60)
	app, rev := testApp(t, m.reg, hook, 5)
	r := m.runner()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := r.Ensure(context.Background(), app, rev, Pre, 1)
		if err != nil {
			t.Fatal(err)
		}
		if st.Phase == Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hook not running after 30s: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}

	m.stop(false) // kill -9: the hook's process keeps running
	m.start()
	r = m.runner() // a new Slipway's controller
	st, err := r.Ensure(context.Background(), app, rev, Pre, 1)
	if err != nil {
		t.Fatal(err)
	}
	if st.Ended() {
		t.Fatalf("hook ended on its own before the gate opened: %+v", st)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	st = m.until(r, app, rev, Pre, 1)
	// The process runtime cannot see how a process it did not start ended:
	// the run is reported as failed with an unknown status, never rerun.
	if st.Phase != Failed || st.Reason != runtime.ReasonUnknown || !strings.HasPrefix(st.Message, "exit status unknown") || !strings.HasSuffix(st.Message, "last log lines:\nstarted\nfinished") {
		t.Errorf("status %+v, want Failed with an unknown exit and both log lines", st)
	}
	b, err := os.ReadFile(runs)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("run\n", string(b)); diff != "" {
		t.Errorf("runs of the hook (-want +got):\n%s", diff)
	}
}
