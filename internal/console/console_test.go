package console_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"slipway.dev/slipway/internal/apiserver"
	"slipway.dev/slipway/internal/console"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/store/bolt"
)

// newConsole serves the API with the console inside, over a real
// registry on bbolt; it returns the server and an admin and a view token.
func newConsole(t *testing.T) (*httptest.Server, string, string) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "slipway.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := registry.New(st, registry.Options{})
	ctx := context.Background()
	if err := reg.EnsureDefaultProject(ctx); err != nil {
		t.Fatal(err)
	}
	admin, _, err := reg.EnsureAdminToken(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := reg.CreateToken(ctx, "viewer", registry.RoleView)
	if err != nil {
		t.Fatal(err)
	}
	con := console.New(console.Options{})
	h := apiserver.New(reg, apiserver.Options{Version: "test", Console: con})
	con.SetAPI(h)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, admin, viewer
}

var csrfRE = regexp.MustCompile(`data-csrf="([^"]+)"`)

// signIn signs in with token and returns a client holding the session
// cookie and the page's CSRF token.
func signIn(t *testing.T, srv *httptest.Server, token string) (*http.Client, string, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	resp, err := hc.PostForm(srv.URL+"/console/login", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 1<<16)
	for {
		n, err := resp.Body.Read(buf)
		b.WriteString(string(buf[:n]))
		if err != nil {
			break
		}
	}
	m := csrfRE.FindStringSubmatch(b.String())
	if resp.StatusCode != 200 || m == nil {
		t.Fatalf("sign-in: status %d, no overview page with a CSRF token", resp.StatusCode)
	}
	return hc, m[1], b.String()
}

func TestSignInCookie(t *testing.T) {
	srv, admin, _ := newConsole(t)
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).
		PostForm(srv.URL+"/console/login", url.Values{"token": {admin}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"slipway_session=", "HttpOnly", "SameSite=Strict", "Max-Age="} {
		if !strings.Contains(c, want) {
			t.Errorf("session cookie %q lacks %s", c, want)
		}
	}
	if strings.Contains(c, admin) {
		t.Error("the cookie carries the token")
	}
	bad, _ := http.PostForm(srv.URL+"/console/login", url.Values{"token": {"wrong"}})
	bad.Body.Close()
	if bad.Request.URL.Path != "/console/login" {
		t.Errorf("a wrong token signed in (ended at %s)", bad.Request.URL)
	}
}

func TestChangeNeedsCSRF(t *testing.T) {
	srv, admin, _ := newConsole(t)
	hc, csrf, _ := signIn(t, srv, admin)
	resp, err := hc.PostForm(srv.URL+"/console/p/default/apps/none/action", url.Values{"action": {"promote"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a change without the CSRF token: status %d, want 403", resp.StatusCode)
	}
	resp, err = hc.PostForm(srv.URL+"/console/p/default/apps/none/action", url.Values{"action": {"promote"}, "csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound { // past the CSRF check, the API says the app is missing
		t.Errorf("a change with the CSRF token on a missing app: status %d, want 404", resp.StatusCode)
	}
}

func TestViewTokenHasNoButtonsAndIsRefused(t *testing.T) {
	srv, _, viewer := newConsole(t)
	hc, csrf, page := signIn(t, srv, viewer)
	if !strings.Contains(page, "read-only") || strings.Contains(page, "data-verb") {
		t.Error("a view token's overview does not say read-only, or offers buttons")
	}
	resp, err := hc.PostForm(srv.URL+"/console/p/default/apps/none/action", url.Values{"action": {"scale-up"}, "csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a forged change by a view token: status %d, want 403", resp.StatusCode)
	}
}
