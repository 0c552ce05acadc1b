package deploy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"slipway.dev/slipway/internal/api"
)

// ReasonCrashLoopBackOff is the Progressing condition's reason (phase
// Degraded) while a container of the active revision crash-loops and no
// rollout abort took the App back to a revision that works: an App's
// first revision, or one whose pods began to crash after it completed.
// The node keeps restarting the container with back-off, the revision
// keeps its size, and a new revision rolls out as usual.
const ReasonCrashLoopBackOff = "CrashLoopBackOff"

// crashLoop describes the first container (by pod name, then container
// order) of the active revision's pods that has restarted crashLoopRestarts
// times and is not ready: its pod, last exit code and the last lines of its
// log the node kept in the termination; or returns "".
func (d *decision) crashLoop() string {
	pods := slices.Clone(d.obs.Pods)
	slices.SortFunc(pods, func(a, b *api.Pod) int { return cmp.Compare(a.Metadata.Name, b.Metadata.Name) })
	for _, p := range pods {
		if p.Spec.Revision != d.active.Spec.Number || p.Metadata.DeletionTimestamp != nil {
			continue
		}
		for _, c := range p.Status.ContainerStatuses {
			if c.RestartCount < crashLoopRestarts || c.Ready {
				continue
			}
			msg := fmt.Sprintf("revision %d is crash-looping: container %s of pod %s", d.active.Spec.Number, c.Name, p.Metadata.Name)
			t := c.LastState.Terminated
			if t != nil {
				msg += fmt.Sprintf(" last exited with code %d", t.ExitCode)
				if t.Reason != "" {
					msg += " (" + t.Reason + ")"
				}
				if t.Message != "" {
					msg += ": " + t.Message
				}
				msg += ","
			}
			msg += fmt.Sprintf(" restarted %d times; restarts go on with back-off until a new revision fixes it", c.RestartCount)
			if t != nil {
				if tail := strings.TrimRight(t.LogTail, "\n"); tail != "" {
					msg += "; last log lines:\n" + tail
				}
			}
			return msg
		}
	}
	return ""
}
