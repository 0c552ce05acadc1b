// Package hooks runs a rollout's hooks (App spec.strategy.hooks: pre, mid,
// post) as one-off pods made from the new revision's template, the usual
// place for a database migration. The deploy controller calls Runner.Ensure
// at each reconcile and feeds the Status it gets to the pure Decide, which
// applies the hook's failure policy.
//
// A hook runs exactly once per (revision, hook, attempt): its pod has a
// deterministic name, so a Slipway that restarts while the hook runs finds
// the same pod (the node agent adopts it and never runs a one-off pod
// twice) instead of starting another. Its pod keeps its logs until Cleanup
// removes it.
package hooks

import (
	"fmt"
	"strings"
	"time"

	"slipway.dev/slipway/internal/api"
)

// Hook kinds, as in spec.strategy.hooks.
const (
	Pre  = "pre"
	Mid  = "mid" // Recreate only: between the old pods' stop and the new ones' start
	Post = "post"
)

// Phases of a hook run; the pod phases' names.
const (
	Pending   = api.PodPending
	Running   = api.PodRunning
	Succeeded = api.PodSucceeded
	Failed    = api.PodFailed
)

// Reasons a run failed besides its own exit code.
const (
	// ReasonDeadlineExceeded: the hook ran past timeoutSeconds and was stopped.
	ReasonDeadlineExceeded = "DeadlineExceeded"
	// ReasonPodDeleted: someone deleted the hook's pod before it ended.
	ReasonPodDeleted = "PodDeleted"
)

// Status is what is known of one run of a hook.
type Status struct {
	Hook    string `json:"hook"`
	Attempt int    `json:"attempt"`
	Pod     string `json:"pod"`
	// Phase is Pending, Running, Succeeded or Failed.
	Phase string `json:"phase"`
	// Reason is why a run failed: DeadlineExceeded, PodDeleted, or how its
	// process ended (Error, StartError, OOMKilled, Unknown).
	Reason string `json:"reason,omitempty"`
	// Message explains in words: the exit code and the last log lines once
	// ended, what it waits for while pending.
	Message    string    `json:"message,omitempty"`
	ExitCode   *int32    `json:"exitCode,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
}

// Ended reports whether the run is over (Succeeded or Failed).
func (s Status) Ended() bool { return s.Phase == Succeeded || s.Phase == Failed }

// Action is what the deploy controller does next about a hook.
type Action string

const (
	// Wait: the run is not over; look again later.
	Wait Action = "Wait"
	// Proceed: the rollout goes on (the hook succeeded, or failed under Ignore).
	Proceed Action = "Proceed"
	// Retry: start attempt attempts+1 once RetryDelay(attempts) has passed
	// since the failure.
	Retry Action = "Retry"
	// Abort: the rollout stops; the stable revision keeps serving.
	Abort Action = "Abort"
)

// MaxAttempts bounds the runs of a hook under failurePolicy Retry: a
// migration that failed this often is not going to pass by itself, and the
// rollout stops with its last failure shown (rollout retry starts over).
const MaxAttempts = 5

// Decide applies the hook's failure policy to the status of its attempts-th
// run. A nil hook has nothing to wait for.
func Decide(hook *api.Hook, st Status, attempts int) Action {
	switch {
	case hook == nil:
		return Proceed
	case !st.Ended():
		return Wait
	case st.Phase == Succeeded:
		return Proceed
	}
	switch hook.FailurePolicy {
	case api.HookIgnore:
		return Proceed
	case api.HookRetry:
		if attempts < MaxAttempts {
			return Retry
		}
	}
	return Abort // Abort, the default, and a Retry out of attempts
}

// RetryDelay is how long after the attempts-th failed run the next one
// starts: 5 s doubling, at most 1 minute.
func RetryDelay(attempts int) time.Duration {
	d := 5 * time.Second
	for i := 1; i < attempts && d < time.Minute; i++ {
		d *= 2
	}
	return min(d, time.Minute)
}

// RetryAt is when the next attempt after st, the attempts-th run, may
// start. A run whose end time is unknown may be retried at once.
func RetryAt(st Status, attempts int) time.Time {
	if st.FinishedAt.IsZero() {
		return time.Time{}
	}
	return st.FinishedAt.Add(RetryDelay(attempts))
}

// Describe reads a hook pod's record as a Status. The last log lines it
// shows are those the node kept in the container's termination
// (api.ContainerStateTerminated.LogTail): hooks read Pods, never logs.
func Describe(hook string, attempt int, pod *api.Pod) Status {
	st := Status{Hook: hook, Attempt: attempt, Pod: pod.Metadata.Name, Phase: pod.Status.Phase, StartedAt: pod.Status.StartTime}
	var cs *api.ContainerStatus
	if len(pod.Status.ContainerStatuses) > 0 {
		cs = &pod.Status.ContainerStatuses[0]
	}
	switch st.Phase {
	case Succeeded, Failed:
	case Running:
		if pod.Metadata.DeletionTimestamp != nil {
			st.Phase, st.Reason = Failed, ReasonPodDeleted
			st.Message = "the hook's pod was deleted before it ended"
			return st
		}
		st.Message = "running"
		if cs != nil && cs.State.Running != nil {
			st.StartedAt = cs.State.Running.StartedAt
		}
		return st
	default:
		st.Phase = Pending
		if pod.Metadata.DeletionTimestamp != nil {
			st.Phase, st.Reason = Failed, ReasonPodDeleted
			st.Message = "the hook's pod was deleted before it started"
			return st
		}
		st.Message = "waiting for the node to start the hook's pod"
		switch {
		case cs != nil && cs.State.Waiting != nil:
			st.Message = cs.State.Waiting.Reason + ": " + cs.State.Waiting.Message
		case pod.Status.Reason != "":
			st.Message = pod.Status.Reason + ": " + pod.Status.Message
		}
		return st
	}
	var parts []string
	logTail := ""
	if cs != nil && cs.State.Terminated != nil {
		t := cs.State.Terminated
		logTail = t.LogTail
		st.Reason, st.StartedAt, st.FinishedAt = t.Reason, t.StartedAt, t.FinishedAt
		switch {
		case t.ExitCode < 0:
			parts = append(parts, "exit status unknown")
		case t.Signal != 0:
			code := t.ExitCode
			st.ExitCode = &code
			parts = append(parts, fmt.Sprintf("killed by signal %d (exit code %d)", t.Signal, t.ExitCode))
		default:
			code := t.ExitCode
			st.ExitCode = &code
			parts = append(parts, fmt.Sprintf("exit code %d", t.ExitCode))
		}
		if t.Message != "" {
			parts = append(parts, t.Message)
		}
	}
	if pod.Status.Reason == ReasonDeadlineExceeded {
		st.Phase, st.Reason = Failed, ReasonDeadlineExceeded
		parts = append([]string{pod.Status.Message}, parts...)
	}
	if st.Phase == Succeeded {
		st.Reason = ""
	}
	msg := strings.Join(parts, "; ")
	if tail := strings.TrimRight(logTail, "\n"); tail != "" {
		msg += "; last log lines:\n" + tail
	}
	st.Message = msg
	return st
}
