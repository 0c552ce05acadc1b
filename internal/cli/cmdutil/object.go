package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"time"

	"slipway.dev/slipway/internal/api"
)

// UpdateAttempts bounds read-modify-write retries when an App keeps
// changing under a command.
const UpdateAttempts = 5

// The kinds the commands name.
var (
	AppKind, _      = api.LookupKind("App")
	BuildKind, _    = api.LookupKind("Build")
	EventKind, _    = api.LookupKind("Event")
	PodKind, _      = api.LookupKind("Pod")
	ProjectKind, _  = api.LookupKind("Project")
	RevisionKind, _ = api.LookupKind("Revision")
	RouteKind, _    = api.LookupKind("Route")
	ServiceKind, _  = api.LookupKind("Service")
)

// ErrKeptChanging is UpdateObject's answer when every write met a
// conflict; each caller says what it was doing.
var ErrKeptChanging = errors.New("the object kept changing")

// GetObject reads the named object of kind; T is the kind's type, which
// the client decodes into.
func GetObject[T api.Object](ctx context.Context, cn *Conn, kind api.KindInfo, name string) (T, error) {
	obj, err := cn.Client.Get(ctx, kind, cn.Project, name)
	if err != nil {
		var zero T
		return zero, err
	}
	return obj.(T), nil
}

// UpdateObject applies mutate to cur, as read, and writes it with
// compare-and-swap on its resourceVersion; on a conflict it reads the
// object again and retries, so that no concurrent change is lost. mutate
// returns false when there is nothing to write (cur is returned as read).
// After attempts conflicts it returns ErrKeptChanging.
func UpdateObject[T api.Object](ctx context.Context, cn *Conn, kind api.KindInfo, cur T, attempts int, mutate func(T) (bool, error)) (T, error) {
	var zero T
	for i := 1; ; i++ {
		changed, err := mutate(cur)
		if err != nil || !changed {
			return cur, err
		}
		out, err := cn.Client.Update(ctx, cur)
		switch {
		case err == nil:
			return out.(T), nil
		case !api.IsConflict(err):
			return zero, err
		case i == attempts:
			return zero, ErrKeptChanging
		}
		if cur, err = GetObject[T](ctx, cn, kind, cur.GetMeta().Name); err != nil {
			return zero, err
		}
	}
}

// WithTimeout bounds ctx by d, or not at all when d is 0 (--timeout 0:
// never give up).
func WithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// GetApp reads one App.
func GetApp(ctx context.Context, cn *Conn, name string) (*api.App, error) {
	return GetObject[*api.App](ctx, cn, AppKind, name)
}

// UpdateApp is UpdateObject for an App read with GetApp or OpenApp.
// doing names the change in the error ("scaled", "updated").
func UpdateApp(ctx context.Context, cn *Conn, app *api.App, doing string, mutate func(*api.App) (bool, error)) (*api.App, error) {
	out, err := UpdateObject(ctx, cn, AppKind, app, UpdateAttempts, mutate)
	if errors.Is(err, ErrKeptChanging) {
		return nil, fmt.Errorf("app %s changed %d times while it was being %s: try again", app.Metadata.Name, UpdateAttempts, doing)
	}
	return out, err
}

// AppTarget reads `app/NAME` or `app NAME`.
func AppTarget(args []string, verb string) (string, error) {
	info, names, err := ParseTarget(args)
	if err != nil {
		return "", err
	}
	if info.Kind != "App" {
		return "", fmt.Errorf("%s cannot be used here: only apps can (slipway %s app/NAME)", info.Plural, verb)
	}
	if len(names) != 1 {
		return "", fmt.Errorf("must name one app: slipway %s app/NAME", verb)
	}
	return names[0], nil
}

// ConnectApp connects and reads the App a command works on.
func ConnectApp(ctx context.Context, e *Env, g *Globals, name string) (*Conn, *api.App, error) {
	cn, err := g.Connect(e)
	if err != nil {
		return nil, nil, err
	}
	app, err := GetApp(ctx, cn, name)
	return cn, app, err
}

// OpenApp opens a command on one app: it reads the `app/NAME` (or `app
// NAME`) target, connects and reads the App.
func OpenApp(ctx context.Context, e *Env, g *Globals, args []string, verb string) (*Conn, *api.App, error) {
	name, err := AppTarget(args, verb)
	if err != nil {
		return nil, nil, err
	}
	return ConnectApp(ctx, e, g, name)
}
