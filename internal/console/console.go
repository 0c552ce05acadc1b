// Package console is Slipway's web console, served by `slipway up` under
// /console/ on the API's address: server-rendered HTML and a small
// hand-written script, all embedded in the binary (nothing is loaded from
// elsewhere). It signs a caller in with an API token and keeps the token
// on the server behind a session cookie; every page reads, and every
// button writes, through the same HTTP API the CLI calls, with that
// token, so the API's authentication and authorisation hold for the
// console as for any client (the console only hides what GET
// /api/v1/whoami says the caller may not do). Pages stay live over
// server-sent events fed by the API's watches; the state is summarised
// here and only what changed is sent. See docs/console.md.
package console

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/client"
	"slipway.dev/slipway/internal/telemetry"
)

//go:embed assets
var assets embed.FS

// DefaultSessionTTL is how long a sign-in lasts.
const DefaultSessionTTL = 12 * time.Hour

// Options configures the console.
type Options struct {
	// API is the API's handler: the console calls it in process.
	API http.Handler
	// Series, when set, serves the charts and the measured splits (the
	// router's counters at 1 s for the last hour).
	Series *telemetry.Series
	// SessionTTL defaults to DefaultSessionTTL.
	SessionTTL time.Duration
	Logger     *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// Console is the console's http.Handler.
type Console struct {
	opts     Options
	sessions *sessions
	tmpl     *template.Template
	mux      *http.ServeMux
	static   http.Handler
}

// New returns the console. opts.API may be set later with SetAPI (the
// API's handler serves the console, so one of them is made first).
func New(opts Options) *Console {
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Console{opts: opts, sessions: newSessions(opts.SessionTTL, opts.Now), mux: http.NewServeMux()}
	c.tmpl = template.Must(template.New("").Funcs(funcs).ParseFS(assets, "assets/*.html"))
	sub, _ := fs.Sub(assets, "assets")
	c.static = http.StripPrefix("/console/static/", http.FileServerFS(sub))
	c.routes()
	return c
}

// SetAPI sets the API handler the console calls.
func (c *Console) SetAPI(h http.Handler) { c.opts.API = h }

func (c *Console) routes() {
	m := c.mux
	m.HandleFunc("GET /console/static/{file}", c.serveStatic)
	m.HandleFunc("GET /console/login", c.loginPage)
	m.HandleFunc("POST /console/login", c.login)
	m.HandleFunc("POST /console/logout", c.authed(c.logout, true))
	m.HandleFunc("GET /console/{$}", c.authed(c.overview, false))
	m.HandleFunc("GET /console/stream", c.authed(c.overviewStream, false))
	m.HandleFunc("GET /console/p/{project}/apps/{name}", c.authed(c.appPage, false))
	m.HandleFunc("GET /console/p/{project}/apps/{name}/stream", c.authed(c.appStream, false))
	m.HandleFunc("POST /console/p/{project}/apps/{name}/action", c.authed(c.appAction, true))
	m.HandleFunc("GET /console/p/{project}/routes/{name}", c.authed(c.routePage, false))
	m.HandleFunc("GET /console/p/{project}/routes/{name}/stream", c.authed(c.routeStream, false))
	m.HandleFunc("POST /console/p/{project}/routes/{name}/weights", c.authed(c.routeWeights, true))
	m.HandleFunc("GET /console/p/{project}/pods/{name}", c.authed(c.podPage, false))
	m.HandleFunc("GET /console/p/{project}/pods/{name}/stream", c.authed(c.podStream, false))
	m.HandleFunc("GET /console/p/{project}/pods/{name}/logs", c.authed(c.podLogs, false))
	m.HandleFunc("GET /console/p/{project}/pods/{name}/log.txt", c.authed(c.podLogDownload, false))
	m.HandleFunc("GET /console/events", c.authed(c.eventsPage, false))
	m.HandleFunc("GET /console/events/stream", c.authed(c.eventsStream, false))
	m.HandleFunc("GET /console/builds", c.authed(c.buildsPage, false))
	m.HandleFunc("GET /console/builds/stream", c.authed(c.buildsStream, false))
	m.HandleFunc("GET /console/p/{project}/builds/{name}", c.authed(c.buildPage, false))
	m.HandleFunc("GET /console/p/{project}/builds/{name}/logs", c.authed(c.buildLogs, false))
	m.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such console page", http.StatusNotFound)
	})
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Nothing but the console's own files, no framing by other sites.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	if r.URL.Path == "/console" {
		http.Redirect(w, r, "/console/", http.StatusMovedPermanently)
		return
	}
	c.mux.ServeHTTP(w, r)
}

func (c *Console) serveStatic(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	c.static.ServeHTTP(w, r)
}

// caller is the signed-in session as a request sees it, with a client
// that calls the API with its token.
type caller struct {
	*session
	cl *client.Client
}

func (c *Console) client(token string) *client.Client {
	return client.New(client.Config{Server: "http://console.internal", Token: token,
		HTTPClient: &http.Client{Transport: inProcess{c.opts.API}}, UserAgent: "slipway-console"})
}

// authed runs h for a signed-in caller; a change (change=true) also needs
// the session's CSRF token.
func (c *Console) authed(h func(http.ResponseWriter, *http.Request, caller), change bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ss := c.sessions.get(r)
		if ss == nil {
			if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, "/stream") {
				http.Redirect(w, r, "/console/login", http.StatusSeeOther)
				return
			}
			c.answer(w, r, http.StatusUnauthorized, "not signed in (or the session expired): sign in again")
			return
		}
		if change && !ss.checkCSRF(r) {
			c.answer(w, r, http.StatusForbidden, "missing or wrong CSRF token: reload the page and try again")
			return
		}
		if change && !ss.who.Write && r.URL.Path != "/console/logout" {
			// What the API's Authorize answered at sign-in (GET
			// /api/v1/whoami); the API refuses the write anyway.
			c.answer(w, r, http.StatusForbidden, fmt.Sprintf("token %q has role %q, which may only read", ss.who.Name, ss.who.Role))
			return
		}
		h(w, r, caller{session: ss, cl: c.client(ss.token)})
	}
}

// answer ends a change: JSON for the script, a redirect back (with the
// message) for a plain form.
func (c *Console) answer(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if strings.Contains(r.Header.Get("Accept"), "application/json") || r.Header.Get("X-CSRF-Token") != "" || code >= 400 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
		return
	}
	back := r.Referer()
	if back == "" || !strings.Contains(back, "/console/") {
		back = "/console/"
	}
	back, _, _ = strings.Cut(back, "?")
	http.Redirect(w, r, back+"?msg="+template.URLQueryEscaper(msg), http.StatusSeeOther)
}

// apiFailure answers an error from the API with its status.
func (c *Console) apiFailure(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusBadGateway
	var ae *api.Error
	if e, ok := err.(*api.Error); ok {
		ae = e
	}
	if ae != nil && ae.Code != 0 {
		code = ae.Code
	}
	c.answer(w, r, code, err.Error())
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, "login", map[string]string{"Error": r.URL.Query().Get("error")})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" {
		http.Redirect(w, r, "/console/login?error="+template.URLQueryEscaper("enter a token"), http.StatusSeeOther)
		return
	}
	who, err := c.client(token).WhoAmI(r.Context())
	if err != nil {
		msg := "that token was not accepted"
		if api.ReasonOf(err) != api.ReasonUnauthorized {
			msg = "cannot check the token: " + err.Error()
		}
		http.Redirect(w, r, "/console/login?error="+template.URLQueryEscaper(msg), http.StatusSeeOther)
		return
	}
	ss := c.sessions.create(token, who)
	http.SetCookie(w, c.sessions.cookie(ss, r))
	c.opts.Logger.Info("console sign-in", "user", who.Name)
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, cl caller) {
	c.sessions.delete(cl.id)
	http.SetCookie(w, clearCookie(r))
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

// page is what every page's layout needs.
type page struct {
	Title  string
	S      sessionView
	Flash  string
	Stream string
}

type sessionView struct {
	Name, Role, CSRF string
	Write            bool
}

func (c *Console) page(r *http.Request, cl caller, title, stream string) page {
	return page{Title: title, Flash: r.URL.Query().Get("msg"), Stream: stream,
		S: sessionView{Name: cl.who.Name, Role: cl.who.Role, CSRF: cl.csrf, Write: cl.who.Write}}
}

func (c *Console) render(w http.ResponseWriter, name string, data any) {
	var b bytes.Buffer
	if err := c.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		c.opts.Logger.Error("console template", "template", name, "err", err)
		http.Error(w, "cannot render the page: see the server log", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b.Bytes())
}

// fragment renders a named template to a string (for a patch).
func (c *Console) fragment(name string, data any) string {
	var b bytes.Buffer
	if err := c.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		c.opts.Logger.Error("console template", "template", name, "err", err)
	}
	return b.String()
}

var funcs = template.FuncMap{
	"f2": func(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) },
	"pct": func(w int32) string {
		return strconv.FormatFloat(math.Round(float64(w)*10)/10, 'f', -1, 64)
	},
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("15:04:05")
	},
	"act":    actButton,
	"actRev": actRevButton,
}

// button is one action button of the App page.
type button struct {
	Path, CSRF, Action, Label, Class string
	Revision                         int64
}

func actButton(v appView, action, label, class string) button {
	return button{Path: v.Path, CSRF: v.S.CSRF, Action: action, Label: label, Class: class}
}

func actRevButton(v appView, rev int64) button {
	return button{Path: v.Path, CSRF: v.S.CSRF, Action: "undo", Label: fmt.Sprintf("Roll out revision %d again", rev), Revision: rev}
}
