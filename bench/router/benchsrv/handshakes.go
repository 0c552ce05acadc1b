package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// handshakes measures new HTTPS connections per second: each of -c
// workers opens a connection, makes a full TLS handshake (no session
// resumption unless -resume), sends one GET with Connection: close, reads
// the answer to its end and starts over, for -d. It prints its result as
// wrk does (run.sh parses both alike): the rate, latency percentiles of
// connect+handshake+request, the count, and the errors.
func handshakes(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("handshakes", flag.ExitOnError)
	rawURL := fs.String("url", "https://localhost:18190/", "the HTTPS URL to request")
	conns := fs.Int("c", 64, "concurrent workers")
	dur := fs.Duration("d", 10*time.Second, "how long to run")
	resume := fs.Bool("resume", false, "resume TLS sessions (tickets) instead of full handshakes")
	fs.Parse(args)
	u, err := url.Parse(*rawURL)
	if err != nil || u.Scheme != "https" {
		return fmt.Errorf("-url %q: want an https:// URL", *rawURL)
	}
	cfg := &tls.Config{
		ServerName:         u.Hostname(),
		InsecureSkipVerify: true, // a certificate made for the run: verification is the client's cost, not the server's
		NextProtos:         []string{"http/1.1"},
		// What common clients offer first; the contenders' OpenSSL 3.0
		// has no ML-KEM, so every server is measured on X25519.
		CurvePreferences: []tls.CurveID{tls.X25519},
	}
	if *resume {
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(*conns * 2)
	}
	req := []byte("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nConnection: close\r\n\r\n")
	type result struct {
		lat    []time.Duration
		errors int
	}
	results := make([]result, *conns)
	end := time.Now().Add(*dur)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range *conns {
		wg.Go(func() {
			r := &results[i]
			for time.Now().Before(end) {
				t0 := time.Now()
				if err := oneRequest(u.Host, cfg, req); err != nil {
					r.errors++
					continue
				}
				r.lat = append(r.lat, time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var lat []time.Duration
	errs := 0
	for _, r := range results {
		lat = append(lat, r.lat...)
		errs += r.errors
	}
	slices.Sort(lat)
	pct := func(p float64) string {
		if len(lat) == 0 {
			return "0.00ms"
		}
		return fmt.Sprintf("%.2fms", float64(lat[min(len(lat)-1, int(p*float64(len(lat))))])/1e6)
	}
	fmt.Fprintf(out, "  Latency Distribution\n     50%%   %s\n     99%%   %s\n", pct(0.50), pct(0.99))
	fmt.Fprintf(out, "  %d requests in %.2fs\n", len(lat), elapsed.Seconds())
	if errs > 0 {
		fmt.Fprintf(out, "  Socket errors: connect 0, read %d, write 0, timeout 0\n", errs)
	}
	fmt.Fprintf(out, "Requests/sec: %.2f\n", float64(len(lat))/elapsed.Seconds())
	return nil
}

func oneRequest(addr string, cfg *tls.Config, req []byte) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode/100 != 2 {
		err = fmt.Errorf("status %d", resp.StatusCode)
	}
	return err
}
