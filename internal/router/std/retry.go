package std

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"sync/atomic"
	"time"

	"slipway.dev/slipway/internal/router"
)

// RetryBufferBytes is the largest request body the Router keeps in memory
// so that a route with retries or a mirror can send it again. Longer
// bodies stream and are neither retried after being sent nor mirrored.
const RetryBufferBytes = 64 << 10

type roundTripper struct{ r *Handler }

// RoundTrip sends req to the attempt's endpoint and sends it again to
// another endpoint (never one that refused a connect or answered) when
//   - it failed before any byte of it reached the endpoint (a refused or
//     failed connect, or a failure before the headers were written);
//   - it failed on a pooled connection the endpoint was closing (reset or
//     EOF on reuse: the endpoint is not at fault, so it may be tried again
//     on a fresh connection) and may be replayed (idempotent or with a
//     buffered body, and any body buffered);
//   - it failed after it was sent on a fresh connection, and may be
//     replayed: once;
//   - the answer's status is one the route retries, the request is
//     idempotent and any body buffered: up to the route's Attempts;
//
// in all, to at most router.MaxTries attempts.
func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	r := rt.r
	a := req.Context().Value(ctxKey{}).(*stdAttempt)
	body := req.Body
	noBody := body == nil || body == http.NoBody
	if !noBody {
		// The transport closes the body on failure; keep it usable for a
		// retry (the server closes the inbound body itself).
		req.Body = io.NopCloser(body)
	}
	buffered := !noBody && req.GetBody != nil
	idem := router.Idempotent(req.Method)
	statusLeft := a.Route.Retries.Attempts
	replayable := (noBody || buffered) && (idem || buffered)
	var tried []netip.AddrPort
	out := req
	for attempts := 1; ; attempts++ {
		resp, wrote, reused, err := r.try(out, a)
		if err == nil || !reused {
			tried = append(tried, a.Endpoint.Addr)
		}
		retry := false
		switch {
		case req.Context().Err() != nil:
			if err != nil {
				a.CountError()
			}
		case err != nil:
			a.CountError()
			retry = !wrote || replayable && (reused || !a.Retried)
		case statusLeft > 0 && a.Route.Retries.RetryOnStatus(resp.StatusCode) && idem && (noBody || buffered):
			retry = true
		}
		if !retry || attempts >= router.MaxTries {
			return resp, err
		}
		_, p := router.Acquire(r.Router, a.host, a.path, router.HTTPView{Request: req}, a.Revision, tried)
		if p.Endpoint == nil {
			return resp, err
		}
		var next io.ReadCloser = req.Body
		if buffered && (wrote || err == nil) {
			var berr error
			if next, berr = req.GetBody(); berr != nil {
				r.Release(p.Endpoint)
				return resp, cmp.Or(err, berr)
			}
		}
		cause := fmt.Sprint(err)
		if err == nil {
			statusLeft--
			cause = "status " + resp.Status
			// Unread: the connection is not reused, which is as well for
			// an endpoint that answers errors.
			resp.Body.Close()
		} else if wrote && !reused {
			a.Retried = true
		}
		failed := a.Endpoint.Addr
		r.RetryOn(&a.Attempt, p)
		r.Logger().Debug("retrying request on another endpoint", "route", a.Route.Key, "failed", failed, "endpoint", p.Endpoint.Addr, "cause", cause)
		out = req.Clone(req.Context())
		out.URL.Host = p.Endpoint.Addr.String()
		out.Body = next
	}
}

// bufferBody reads a body of known length up to RetryBufferBytes into
// memory so that it can be sent more than once; it reports false when it
// answered the request itself (the body could not be read).
func (r *Handler) bufferBody(w http.ResponseWriter, req *http.Request) bool {
	if req.Body == nil || req.Body == http.NoBody || req.GetBody != nil || req.ContentLength <= 0 || req.ContentLength > RetryBufferBytes {
		return true
	}
	b, err := io.ReadAll(req.Body)
	if err != nil {
		status := http.StatusBadRequest
		if _, ok := err.(*http.MaxBytesError); ok {
			status = http.StatusRequestEntityTooLarge
		}
		http.Error(w, "slipway router: reading the request body: "+err.Error(), status)
		return false
	}
	setBuffered(req, b)
	return true
}

// setBuffered makes b req's body, replayable through GetBody.
func setBuffered(req *http.Request, b []byte) {
	req.ContentLength = int64(len(b))
	req.Body = io.NopCloser(bytes.NewReader(b))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
}

// try sends req to a.ep; wrote reports whether any of the request may have
// reached the endpoint, reused whether it went on a pooled connection.
func (r *Handler) try(req *http.Request, a *stdAttempt) (resp *http.Response, wrote, reused bool, err error) {
	var wroteHeaders, reusedConn atomic.Bool
	ctx := httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn:      func(i httptrace.GotConnInfo) { reusedConn.Store(i.Reused) },
		WroteHeaders: func() { wroteHeaders.Store(true) },
	})
	if d := a.Route.Timeouts.Response; d > 0 {
		t := time.AfterFunc(d, func() { a.cancel(router.ErrTimeout) })
		defer t.Stop()
	}
	resp, err = a.Endpoint.Transport(r.newTransport).RoundTrip(req.WithContext(ctx))
	if err != nil && errors.Is(context.Cause(ctx), router.ErrTimeout) {
		err = fmt.Errorf("%w after %s: %w", router.ErrTimeout, a.Route.Timeouts.Response, err)
	}
	return resp, wroteHeaders.Load(), reusedConn.Load(), err
}
