package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"slipway.dev/slipway/internal/client"
)

// cookieName holds the session id; the token it stands for never leaves
// the server.
const cookieName = "slipway_session"

// session is a signed-in caller: the API token it signed in with (kept in
// memory only), who the API says it is, and its CSRF token.
type session struct {
	id      string
	token   string
	who     client.WhoAmI
	csrf    string
	expires time.Time
}

// sessions is the console's in-memory session table: a restart signs
// everyone out, which is the safe way round.
type sessions struct {
	mu  sync.Mutex
	m   map[string]*session
	ttl time.Duration
	now func() time.Time
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{m: map[string]*session{}, ttl: ttl, now: now}
}

func randomID() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *sessions) create(token string, who client.WhoAmI) *session {
	ss := &session{id: randomID(), token: token, who: who, csrf: randomID(), expires: s.now().Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, o := range s.m { // expired sessions go when a new one comes
		if !s.now().Before(o.expires) {
			delete(s.m, id)
		}
	}
	s.m[ss.id] = ss
	return ss
}

func (s *sessions) get(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[c.Value]
	if ss == nil {
		return nil
	}
	if !s.now().Before(ss.expires) {
		delete(s.m, ss.id)
		return nil
	}
	return ss
}

func (s *sessions) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}

// cookie is the session cookie: HttpOnly (no script reads it),
// SameSite=Strict (no other site's page sends it), Secure when the console
// is served over TLS, and expiring with the session.
func (s *sessions) cookie(ss *session, r *http.Request) *http.Cookie {
	return &http.Cookie{Name: cookieName, Value: ss.id, Path: "/console/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, Expires: ss.expires, MaxAge: int(s.ttl.Seconds())}
}

func clearCookie(r *http.Request) *http.Cookie {
	return &http.Cookie{Name: cookieName, Value: "", Path: "/console/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: -1}
}

// checkCSRF accepts a change only with the session's CSRF token, in the
// form field or the X-CSRF-Token header the script sends.
func (ss *session) checkCSRF(r *http.Request) bool {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(ss.csrf)) == 1
}
