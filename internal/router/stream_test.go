package router_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"slipway.dev/slipway/internal/router"
)

// TestStreamedResponsePassesUnbufferedAndEndsCleanlyOnDrain: an SSE
// endpoint sends one event and holds the stream open. The client gets the
// event while the stream is open (nothing is buffered); once the endpoint
// leaves the table and the drain deadline passes, the response ends as a
// complete chunked response (no error for the client) and WaitDrained
// returns.
func TestStreamedResponsePassesUnbufferedAndEndsCleanlyOnDrain(t *testing.T) {
	t.Parallel() // mostly waiting: deadlines and spaced requests
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort(ln.Addr().String())
	release := make(chan struct{})
	defer close(release)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-req.Context().Done():
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	other := newUpstream(t, "other")

	const drain = 300 * time.Millisecond
	r := router.New(router.Options{DrainTimeout: drain})
	base := serveRouter(t, r)
	apply(t, r, router.OneBackend("p/sse", "sse.test", "", addr.String()))
	req, _ := http.NewRequest("GET", base+"/events", nil)
	req.Host = "sse.test"
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ContentLength != -1 || resp.TransferEncoding[0] != "chunked" {
		t.Fatalf("length %d, encoding %v: want a chunked stream", resp.ContentLength, resp.TransferEncoding)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event while the stream is open: %q %v", line, err)
	}

	left := time.Now()
	apply(t, r, router.OneBackend("p/sse", "sse.test", "", other.addr.String()))
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\n" {
		t.Fatalf("end of the stream: %q, %v; want a clean end", rest, err)
	}
	if since := time.Since(left); since < drain {
		t.Errorf("stream ended %s after its endpoint left, before the %s deadline", since, drain)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.WaitDrained(ctx, addr); err != nil {
		t.Fatal(err)
	}
}
