// Package e2e runs the real slipway binary: `slipway up` on free loopback
// ports with a temporary data dir, and the CLI verbs against it.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bin is the slipway binary built once for every test; helloBin the
// sample app.
var bin, helloBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "slipway-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "slipway")
	helloBin = filepath.Join(dir, "hello")
	for target, pkg := range map[string]string{bin: "slipway.dev/slipway/cmd/slipway", helloBin: "slipway.dev/slipway/examples/hello"} {
		out, err := exec.Command("go", "build", "-o", target, pkg).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// platform is one running `slipway up`.
type platform struct {
	t       *testing.T
	home    string // HOME, XDG dirs live below it
	dataDir string
	cmd     *exec.Cmd
	apiURL  string
	router  string
	https   string
	done    chan struct{}
	logs    *syncBuffer
}

// syncBuffer is the platform's log: written by the reader goroutine while
// tests read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var apiLine = regexp.MustCompile(`API:\s+(http://\S+)`)
var routerLine = regexp.MustCompile(`Router:\s+http://(\S+)`)
var tlsLine = regexp.MustCompile(`TLS:\s+(\S+)`)

// startPlatform runs `slipway up` on port 0 and waits until it prints its
// addresses and answers /readyz. home keeps the data dir across restarts.
func startPlatform(t *testing.T, home string, extra ...string) *platform {
	t.Helper()
	p := &platform{t: t, home: home, dataDir: filepath.Join(home, "data"), done: make(chan struct{}), logs: &syncBuffer{}}
	// Each platform gets address ranges of its own (kept across restarts of
	// the same home), so tests running at once never share a pod address.
	n := rangeFor(home)
	args := append([]string{"up", "--data-dir", p.dataDir, "--api-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--https-addr", "127.0.0.1:0",
		"--pod-ip-range", fmt.Sprintf("127.22.%d.0/24", n), "--service-ip-range", pickServiceRange(t, home, n, extra)}, extra...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = p.env()
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.logs.WriteString(line + "\n")
			if m := apiLine.FindStringSubmatch(line); m != nil {
				p.apiURL = m[1]
			}
			if m := routerLine.FindStringSubmatch(line); m != nil {
				p.router = m[1]
			}
			if m := tlsLine.FindStringSubmatch(line); m != nil {
				p.https = m[1]
				close(ready)
			}
		}
		io.Copy(io.Discard, stderr)
		p.cmd.Wait()
	}()
	select {
	case <-ready:
	case <-p.done:
		t.Fatalf("slipway up exited before it was ready:\n%s", p.logs)
	case <-time.After(30 * time.Second):
		p.kill()
		t.Fatalf("slipway up did not print its addresses within 30s:\n%s", p.logs)
	}
	waitUntil(t, 10*time.Second, "API /readyz answers 200", func() bool {
		resp, err := http.Get(p.apiURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	t.Cleanup(p.stop)
	return p
}

// rangeFor maps a home directory to a /24 number.
func rangeFor(home string) int {
	h := uint32(2166136261)
	for _, c := range []byte(home) {
		h = (h ^ uint32(c)) * 16777619
	}
	return int(h % 250)
}

func (p *platform) env() []string {
	return append(os.Environ(),
		"HOME="+p.home,
		"XDG_CONFIG_HOME="+filepath.Join(p.home, "config"),
		"XDG_DATA_HOME="+filepath.Join(p.home, "share"),
		"SLIPWAY_SERVER=", "SLIPWAY_TOKEN=", "SLIPWAY_PROJECT=", "SLIPWAY_CONFIG=",
	)
}

// stop sends SIGTERM and waits for a graceful exit.
func (p *platform) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill()
		p.t.Errorf("slipway up did not stop within 30s of SIGTERM:\n%s", p.logs)
	}
}

func (p *platform) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// result is what one CLI invocation did.
type result struct {
	stdout, stderr string
	code           int
}

// run runs the CLI with the platform's environment (so it finds the config
// file `up` wrote) and stdin.
func (p *platform) run(stdin string, args ...string) result {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = p.env()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		p.t.Fatalf("running slipway %v: %v", args, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// ok runs the CLI and fails the test unless it exits 0.
func (p *platform) ok(args ...string) string {
	p.t.Helper()
	r := p.run("", args...)
	if r.code != 0 {
		p.t.Fatalf("slipway %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
