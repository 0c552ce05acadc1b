// Package etcdtest runs a real etcd server for tests: the binary
// .ci/etcd.sh builds, on free loopback ports, with a temporary data dir.
//
// Tests skip without the binary, and fail instead when
// SLIPWAY_REQUIRE_ETCD=1 (CI sets it). SLIPWAY_ETCD_BIN names the binary;
// otherwise it is looked up where .ci/etcd.sh caches it.
package etcdtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Version is the etcd release .ci/etcd.sh builds.
const Version = "v3.7.3"

// startTimeout bounds the wait for a started server to report healthy.
const startTimeout = 60 * time.Second

// Binary returns the etcd binary's path, or "" with the reason it has none.
func Binary() (string, string) {
	if p := os.Getenv("SLIPWAY_ETCD_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Sprintf("SLIPWAY_ETCD_BIN=%s: %v", p, err)
		}
		return p, ""
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", "no SLIPWAY_ETCD_BIN and no home directory for the cache"
		}
		cache = filepath.Join(home, ".cache")
	}
	p := filepath.Join(cache, "slipway", "etcd-"+Version, "etcd")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Sprintf("no etcd binary (SLIPWAY_ETCD_BIN unset, %s missing; build it with .ci/etcd.sh)", p)
	}
	return p, ""
}

// Server is a running etcd.
type Server struct {
	// Endpoint is the client URL (http://127.0.0.1:port).
	Endpoint string

	t       testing.TB
	bin     string
	args    []string
	logPath string
	http    *http.Client // for /health

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts an etcd server that is stopped when the test ends. It skips
// the test when there is no binary, unless SLIPWAY_REQUIRE_ETCD=1.
func Start(t testing.TB) *Server {
	t.Helper()
	return startCluster(t, 1, nil)[0]
}

// StartWithArgs starts a one-member server with extra etcd flags (such as
// --quota-backend-bytes).
func StartWithArgs(t testing.TB, args ...string) *Server {
	t.Helper()
	return startCluster(t, 1, nil, args...)[0]
}

// StartTLS starts an etcd server that serves clients over TLS only and
// requires a client certificate, with a CA, a server certificate for
// 127.0.0.1 and a client certificate made for the test.
func StartTLS(t testing.TB) (*Server, TLSFiles) {
	t.Helper()
	files := makeCerts(t, t.TempDir())
	return startCluster(t, 1, &files)[0], files
}

// StartCluster starts a cluster of n members and returns once each
// reports healthy (which takes a quorum).
func StartCluster(t testing.TB, n int) []*Server {
	t.Helper()
	return startCluster(t, n, nil)
}

func startCluster(t testing.TB, n int, tlsFiles *TLSFiles, extra ...string) []*Server {
	t.Helper()
	bin, why := Binary()
	if bin == "" {
		if os.Getenv("SLIPWAY_REQUIRE_ETCD") == "1" {
			t.Fatalf("SLIPWAY_REQUIRE_ETCD=1 but %s", why)
		}
		t.Skip(why)
	}
	scheme := "http://"
	if tlsFiles != nil {
		scheme = "https://"
	}
	members := make([]*Server, n)
	peers := make([]string, n)
	for i := range members {
		peers[i] = fmt.Sprintf("m%d=http://%s", i, freePort(t))
	}
	for i := range members {
		dir := t.TempDir()
		client, peer := freePort(t), strings.SplitN(peers[i], "=", 2)[1]
		s := &Server{
			Endpoint: scheme + client,
			t:        t,
			bin:      bin,
			logPath:  filepath.Join(dir, "etcd.log"),
			http:     http.DefaultClient,
			args: []string{
				"--name", fmt.Sprintf("m%d", i),
				"--data-dir", filepath.Join(dir, "data"),
				"--listen-client-urls", scheme + client,
				"--advertise-client-urls", scheme + client,
				"--listen-peer-urls", peer,
				"--initial-advertise-peer-urls", peer,
				"--initial-cluster", strings.Join(peers, ","),
				"--log-level", "warn",
			},
		}
		s.args = append(s.args, extra...)
		if tlsFiles != nil {
			s.args = append(s.args, "--cert-file", tlsFiles.ServerCert, "--key-file", tlsFiles.ServerKey,
				"--trusted-ca-file", tlsFiles.CA, "--client-cert-auth")
			s.http = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsFiles.clientConfig(t)}}
		}
		t.Cleanup(s.Stop)
		s.launch()
		members[i] = s
	}
	for _, s := range members {
		s.wait()
	}
	return members
}

// launch starts the process; wait waits until it is healthy.
func (s *Server) launch() {
	s.t.Helper()
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(s.bin, s.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		s.t.Fatalf("start etcd: %v", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
}

func (s *Server) wait() {
	s.t.Helper()
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if err := s.waitHealthy(done); err != nil {
		s.Stop()
		s.t.Fatalf("etcd at %s: %v\n%s", s.Endpoint, err, s.Log())
	}
}

// waitHealthy polls /health until it says true, the process exits or the
// deadline passes.
func (s *Server) waitHealthy(exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/health", nil)
		if resp, err := s.http.Do(req); err == nil {
			var body bytes.Buffer
			body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(body.String(), `"health":"true"`) {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("exited before it was healthy")
		case <-ctx.Done():
			return fmt.Errorf("not healthy within %v", startTimeout)
		case <-tick.C:
		}
	}
}

// Kill stops the server with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

// Restart starts the server again on the same ports and data, and waits
// until it is healthy.
func (s *Server) Restart() {
	s.t.Helper()
	s.launch()
	s.wait()
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 s) and waits for
// it. Stopping a stopped server does nothing.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// Log returns what the server wrote so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// freePort returns a loopback address nobody listens on right now.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
