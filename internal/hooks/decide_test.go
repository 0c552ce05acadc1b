package hooks

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
)

func TestDecide(t *testing.T) {
	hook := func(policy string) *api.Hook { return &api.Hook{Command: []string{"migrate"}, FailurePolicy: policy} }
	pending, running := Status{Phase: Pending}, Status{Phase: Running}
	ok, failed := Status{Phase: Succeeded}, Status{Phase: Failed}
	for _, tc := range []struct {
		name     string
		hook     *api.Hook
		st       Status
		attempts int
		want     Action
	}{
		{"no hook", nil, Status{}, 0, Proceed},
		{"pending waits", hook(api.HookAbort), pending, 1, Wait},
		{"running waits", hook(api.HookIgnore), running, 1, Wait},
		{"success proceeds", hook(api.HookAbort), ok, 1, Proceed},
		{"success after retries proceeds", hook(api.HookRetry), ok, 4, Proceed},
		{"failure aborts under Abort", hook(api.HookAbort), failed, 1, Abort},
		{"failure aborts under the default", hook(""), failed, 1, Abort},
		{"failure proceeds under Ignore", hook(api.HookIgnore), failed, 1, Proceed},
		{"failure retries under Retry", hook(api.HookRetry), failed, 1, Retry},
		{"last allowed retry", hook(api.HookRetry), failed, MaxAttempts - 1, Retry},
		{"retries run out", hook(api.HookRetry), failed, MaxAttempts, Abort},
		{"timeout is a failure", hook(api.HookRetry), Status{Phase: Failed, Reason: ReasonDeadlineExceeded}, 1, Retry},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Decide(tc.hook, tc.st, tc.attempts); got != tc.want {
				t.Errorf("Decide = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestRetryDelay(t *testing.T) {
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, RetryDelay(n))
	}
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute, time.Minute}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delays (-want +got):\n%s", diff)
	}
	end := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if got := RetryAt(Status{Phase: Failed, FinishedAt: end}, 2); !got.Equal(end.Add(10 * time.Second)) {
		t.Errorf("RetryAt = %v, want 10s after the failure", got)
	}
	if got := RetryAt(Status{Phase: Failed}, 2); !got.IsZero() {
		t.Errorf("RetryAt of a run with no end time = %v, want at once", got)
	}
}

func i32p(n int32) *int32 { return &n }

func TestDescribe(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 := t0.Add(3 * time.Second)
	pod := func(phase string, mutate func(*api.Pod)) *api.Pod {
		p := &api.Pod{Metadata: api.ObjectMeta{Name: "web-2-hook-pre-1"}, Status: api.PodStatus{Phase: phase, StartTime: t0}}
		p.Status.ContainerStatuses = []api.ContainerStatus{{Name: ContainerName}}
		if mutate != nil {
			mutate(p)
		}
		return p
	}
	term := func(code, sig int32, reason, msg string) func(*api.Pod) {
		return func(p *api.Pod) {
			p.Status.ContainerStatuses[0].State.Terminated = &api.ContainerStateTerminated{ExitCode: code, Signal: sig, Reason: reason, Message: msg, StartedAt: t0, FinishedAt: t1}
		}
	}
	base := Status{Hook: Pre, Attempt: 1, Pod: "web-2-hook-pre-1"}
	with := func(f func(*Status)) Status { s := base; f(&s); return s }
	for _, tc := range []struct {
		name string
		pod  *api.Pod
		tail string
		want Status
	}{
		{"not started yet", pod("", func(p *api.Pod) { p.Status.StartTime = time.Time{}; p.Status.ContainerStatuses = nil }), "",
			with(func(s *Status) { s.Phase, s.Message = Pending, "waiting for the node to start the hook's pod" })},
		{"pending on a missing secret", pod(Pending, func(p *api.Pod) {
			p.Status.ContainerStatuses[0].State.Waiting = &api.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: `secret "db" not found`}
		}), "", with(func(s *Status) {
			s.Phase, s.StartedAt, s.Message = Pending, t0, `CreateContainerConfigError: secret "db" not found`
		})},
		{"running", pod(Running, func(p *api.Pod) {
			p.Status.ContainerStatuses[0].State.Running = &api.ContainerStateRunning{StartedAt: t1}
		}), "", with(func(s *Status) { s.Phase, s.StartedAt, s.Message = Running, t1, "running" })},
		{"deleted while running", pod(Running, func(p *api.Pod) { p.Metadata.DeletionTimestamp = &t1 }), "",
			with(func(s *Status) {
				s.Phase, s.Reason, s.StartedAt, s.Message = Failed, ReasonPodDeleted, t0, "the hook's pod was deleted before it ended"
			})},
		{"succeeded", pod(Succeeded, term(0, 0, "Completed", "")), "migrated 3 tables\n",
			with(func(s *Status) {
				s.Phase, s.ExitCode, s.StartedAt, s.FinishedAt = Succeeded, i32p(0), t0, t1
				s.Message = "exit code 0; last log lines:\nmigrated 3 tables"
			})},
		{"failed with its exit code and log", pod(Failed, term(3, 0, "Error", "")), "connecting\nERROR: relation exists\n",
			with(func(s *Status) {
				s.Phase, s.Reason, s.ExitCode, s.StartedAt, s.FinishedAt = Failed, "Error", i32p(3), t0, t1
				s.Message = "exit code 3; last log lines:\nconnecting\nERROR: relation exists"
			})},
		{"killed by a signal", pod(Failed, term(137, 9, "OOMKilled", "")), "",
			with(func(s *Status) {
				s.Phase, s.Reason, s.ExitCode, s.StartedAt, s.FinishedAt = Failed, "OOMKilled", i32p(137), t0, t1
				s.Message = "killed by signal 9 (exit code 137)"
			})},
		{"could not start", pod(Failed, term(128, 0, "StartError", `exec: "migrate": not found`)), "",
			with(func(s *Status) {
				s.Phase, s.Reason, s.ExitCode, s.StartedAt, s.FinishedAt = Failed, "StartError", i32p(128), t0, t1
				s.Message = `exit code 128; exec: "migrate": not found`
			})},
		{"timed out", pod(Failed, func(p *api.Pod) {
			term(143, 15, "Error", "")(p)
			p.Status.Reason, p.Status.Message = ReasonDeadlineExceeded, "the pod ran longer than its activeDeadlineSeconds (5s) and was stopped"
		}), "step 1\n", with(func(s *Status) {
			s.Phase, s.Reason, s.ExitCode, s.StartedAt, s.FinishedAt = Failed, ReasonDeadlineExceeded, i32p(143), t0, t1
			s.Message = "the pod ran longer than its activeDeadlineSeconds (5s) and was stopped; killed by signal 15 (exit code 143); last log lines:\nstep 1"
		})},
		{"outcome unknown after a restart", pod(Failed, term(-1, 0, "Unknown", "adopted after a Slipway restart")), "",
			with(func(s *Status) {
				s.Phase, s.Reason, s.StartedAt, s.FinishedAt = Failed, "Unknown", t0, t1
				s.Message = "exit status unknown; adopted after a Slipway restart"
			})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.tail != "" {
				// Where the node keeps the end of the log.
				tc.pod.Status.ContainerStatuses[0].State.Terminated.LogTail = tc.tail
			}
			if diff := cmp.Diff(tc.want, Describe(Pre, 1, tc.pod)); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}
