package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/runtime"
)

// Probe kinds.
const (
	probeStartup   = "startup"
	probeReadiness = "readiness"
	probeLiveness  = "liveness"
)

// bodyExcerpt bounds what a probe keeps of a response or an exec output.
const bodyExcerpt = 256

// prober runs one probe attempt against a pod's own address.
type prober struct {
	driver runtime.Driver
	client *http.Client
}

func newProber(d runtime.Driver) *prober {
	tr := &http.Transport{
		DisableKeepAlives:  true, // a probe must see a fresh connection, as a new client would
		DisableCompression: true,
		// Like the kubelet, HTTPS probes do not verify the certificate:
		// apps commonly serve a self-signed one on their own address.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a health probe of the pod's own address

		Proxy: nil, // never through a proxy from the environment
	}
	return &prober{driver: d, client: &http.Client{
		Transport: tr,
		// Redirects are never followed: a probe only ever targets the pod's
		// own address. A 3xx counts as success, as in Kubernetes.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// run performs one attempt and explains it.
func (p *prober) run(ctx context.Context, kind string, pr *api.Probe, c api.Container, podUID string, ip netip.Addr, now func() time.Time) api.ProbeResult {
	timeout := time.Duration(max(pr.TimeoutSeconds, 1)) * time.Second
	// The timeout bounds a connection or a command, which run on the wall
	// clock: it is the one wait here not on the injected clock.
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := now()
	res := api.ProbeResult{Probe: kind, Time: start}
	err := p.attempt(ctx, pr, c, podUID, ip, &res)
	res.DurationMS = float64(now().Sub(start).Microseconds()) / 1000
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %v", timeout)
		}
		res.Error = err.Error()
		res.Success = false
	}
	return res
}

func (p *prober) attempt(ctx context.Context, pr *api.Probe, c api.Container, podUID string, ip netip.Addr, res *api.ProbeResult) error {
	switch {
	case pr.HTTPGet != nil:
		g := pr.HTTPGet
		port, err := resolvePort(g.Port, c)
		if err != nil {
			return err
		}
		scheme := "http"
		if strings.EqualFold(g.Scheme, "HTTPS") {
			scheme = "https"
		}
		path := g.Path
		if path == "" {
			path = "/"
		}
		addr := netip.AddrPortFrom(ip, port).String()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+path, nil)
		if err != nil {
			return err
		}
		req.Host = addr
		if g.Host != "" {
			req.Host = g.Host
		}
		req.Header.Set("User-Agent", "slipway-probe/1")
		for _, h := range g.HTTPHeaders {
			if strings.EqualFold(h.Name, "Host") {
				req.Host = h.Value
				continue
			}
			req.Header.Add(h.Name, h.Value)
		}
		resp, err := p.client.Do(req)
		if err != nil {
			var ue interface{ Unwrap() error }
			if errors.As(err, &ue) && ue.Unwrap() != nil {
				err = ue.Unwrap()
			}
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, bodyExcerpt))
		res.StatusCode = resp.StatusCode
		res.Body = excerpt(b)
		res.Success = resp.StatusCode >= 200 && resp.StatusCode < 400
		if !res.Success {
			res.Error = "HTTP probe failed with statuscode: " + strconv.Itoa(resp.StatusCode)
		}
		return nil
	case pr.TCPSocket != nil:
		port, err := resolvePort(pr.TCPSocket.Port, c)
		if err != nil {
			return err
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(ip, port).String())
		if err != nil {
			return err
		}
		conn.Close()
		res.Success = true
		return nil
	case pr.Exec != nil:
		out, err := p.driver.Exec(ctx, podUID, c.Name, pr.Exec.Command)
		if err != nil {
			return err
		}
		res.Body = excerpt(out.Output)
		res.Success = out.ExitCode == 0
		if !res.Success {
			res.Error = fmt.Sprintf("command exited with code %d", out.ExitCode)
		}
		return nil
	}
	return errors.New("probe has no handler")
}

// excerpt keeps the start of b as valid UTF-8 text.
func excerpt(b []byte) string {
	if len(b) > bodyExcerpt {
		b = b[:bodyExcerpt]
	}
	for len(b) > 0 && !utf8.Valid(b) {
		b = b[:len(b)-1]
	}
	return strings.TrimSpace(string(b))
}

// probeState counts consecutive outcomes of one probe, with Kubernetes'
// thresholds.
type probeState struct {
	successes, failures int32
}

// observe records a result and reports whether the probe's verdict is now
// decided: passing (successThreshold reached) or failing (failureThreshold).
func (s *probeState) observe(pr *api.Probe, ok bool) (passing, failing bool) {
	if ok {
		s.successes++
		s.failures = 0
	} else {
		s.failures++
		s.successes = 0
	}
	return s.successes >= max(pr.SuccessThreshold, 1), s.failures >= max(pr.FailureThreshold, 1)
}
