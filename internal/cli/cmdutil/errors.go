package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/manifest"
)

// Exit statuses. Every command exits 0 on success and 1 with a reason on
// stderr on failure; rollout status and wait say more (see their help), and
// a command interrupted by Ctrl-C (or SIGTERM) exits 130 without a word,
// as a shell reports a process killed by SIGINT. A watch (get -w, logs -f,
// events -w) has no other way to end, so an interrupted watch exits 0.
const (
	ExitFailed      = 1
	ExitPaused      = 2 // rollout status: the rollout waits for a person
	ExitTimedOut    = 3 // rollout status and wait: --timeout passed
	ExitInterrupted = 130
)

// ExitError ends a command with a status other than 1. Its message, if
// any, is printed like any error's, or as it is when Note is set (a
// verdict, not a failure).
type ExitError struct {
	Code int
	Err  error
	Note bool
}

// Error is Err's message, or the status when there is none.
func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

// Unwrap returns Err.
func (e *ExitError) Unwrap() error { return e.Err }

// ExitStatus prints err for a person and returns the process status.
func ExitStatus(ctx context.Context, err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var x *ExitError
	if errors.As(err, &x) {
		switch {
		case x.Err != nil && x.Note:
			fmt.Fprintln(stderr, x.Err)
		case x.Err != nil:
			fmt.Fprintln(stderr, FormatError(x.Err))
		}
		return x.Code
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return ExitInterrupted // the user stopped it: nothing to explain
	}
	fmt.Fprintln(stderr, FormatError(err))
	return ExitFailed
}

// FormatError renders an error for a person: manifest problems one per
// line, API errors with their field causes.
func FormatError(err error) string {
	var me *manifest.Error
	if errors.As(err, &me) {
		return "error: " + strings.ReplaceAll(me.Error(), "\n", "\nerror: ")
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		msg := "error: " + ae.Message
		if len(ae.Causes) > 0 && !strings.Contains(ae.Message, ae.Causes[0].Message) {
			for _, c := range ae.Causes {
				msg += "\n  " + c.Field + ": " + c.Message
			}
		}
		return msg
	}
	return "error: " + err.Error()
}
