package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"slipway.dev/slipway/internal/api"
)

// updateAttempts bounds read-modify-write retries when an App keeps
// changing under a command.
const updateAttempts = 5

// The kinds the commands name.
var (
	appKind, _      = api.LookupKind("App")
	buildKind, _    = api.LookupKind("Build")
	eventKind, _    = api.LookupKind("Event")
	podKind, _      = api.LookupKind("Pod")
	projectKind, _  = api.LookupKind("Project")
	revisionKind, _ = api.LookupKind("Revision")
	routeKind, _    = api.LookupKind("Route")
	serviceKind, _  = api.LookupKind("Service")
)

// errKeptChanging is updateObject's answer when every write met a
// conflict; each caller says what it was doing.
var errKeptChanging = errors.New("the object kept changing")

// getObject reads the named object of kind; T is the kind's type, which
// the client decodes into.
func getObject[T api.Object](ctx context.Context, cn *conn, kind api.KindInfo, name string) (T, error) {
	obj, err := cn.c.Get(ctx, kind, cn.project, name)
	if err != nil {
		var zero T
		return zero, err
	}
	return obj.(T), nil
}

// updateObject applies mutate to cur, as read, and writes it with
// compare-and-swap on its resourceVersion; on a conflict it reads the
// object again and retries, so that no concurrent change is lost. mutate
// returns false when there is nothing to write (cur is returned as read).
// After attempts conflicts it returns errKeptChanging.
func updateObject[T api.Object](ctx context.Context, cn *conn, kind api.KindInfo, cur T, attempts int, mutate func(T) (bool, error)) (T, error) {
	var zero T
	for i := 1; ; i++ {
		changed, err := mutate(cur)
		if err != nil || !changed {
			return cur, err
		}
		out, err := cn.c.Update(ctx, cur)
		switch {
		case err == nil:
			return out.(T), nil
		case !api.IsConflict(err):
			return zero, err
		case i == attempts:
			return zero, errKeptChanging
		}
		if cur, err = getObject[T](ctx, cn, kind, cur.GetMeta().Name); err != nil {
			return zero, err
		}
	}
}

// projectOf is the project a command works in for objects of kind: none
// for the kinds that live outside projects (Project itself).
func (cn *conn) projectOf(kind api.KindInfo) string {
	if !kind.Projects {
		return ""
	}
	return cn.project
}

// withTimeout bounds ctx by d, or not at all when d is 0 (--timeout 0:
// never give up).
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// getApp reads one App.
func getApp(ctx context.Context, cn *conn, name string) (*api.App, error) {
	return getObject[*api.App](ctx, cn, appKind, name)
}

// updateApp is updateObject for an App read with getApp or openApp.
// doing names the change in the error ("scaled", "updated").
func updateApp(ctx context.Context, cn *conn, app *api.App, doing string, mutate func(*api.App) (bool, error)) (*api.App, error) {
	out, err := updateObject(ctx, cn, appKind, app, updateAttempts, mutate)
	if errors.Is(err, errKeptChanging) {
		return nil, fmt.Errorf("app %s changed %d times while it was being %s: try again", app.Metadata.Name, updateAttempts, doing)
	}
	return out, err
}

// appTarget reads `app/NAME` or `app NAME`.
func appTarget(args []string, verb string) (string, error) {
	info, names, err := parseTarget(args)
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

// connectApp connects and reads the App a command works on.
func connectApp(ctx context.Context, e *env, g *globals, name string) (*conn, *api.App, error) {
	cn, err := g.connect(e)
	if err != nil {
		return nil, nil, err
	}
	app, err := getApp(ctx, cn, name)
	return cn, app, err
}

// openApp opens a command on one app: it reads the `app/NAME` (or `app
// NAME`) target, connects and reads the App.
func openApp(ctx context.Context, e *env, g *globals, args []string, verb string) (*conn, *api.App, error) {
	name, err := appTarget(args, verb)
	if err != nil {
		return nil, nil, err
	}
	return connectApp(ctx, e, g, name)
}
