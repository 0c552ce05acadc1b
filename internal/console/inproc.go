package console

import (
	"io"
	"net/http"
	"sync"
)

// inProcess is an http.RoundTripper that serves requests with the API's
// handler in this process: the console calls the same API the CLI calls,
// with the session's token, without a socket (and without caring whether
// the API listens with TLS). Responses stream, so watches and followed
// logs work: the handler writes into a pipe the caller reads.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	pr, pw := io.Pipe()
	w := &pipeWriter{header: http.Header{}, pw: pw, ready: make(chan struct{})}
	go func() {
		defer func() {
			w.start(http.StatusOK)
			pw.Close()
		}()
		req.RequestURI = req.URL.RequestURI()
		req.RemoteAddr = "console"
		t.h.ServeHTTP(w, req)
	}()
	select {
	case <-w.ready:
	case <-req.Context().Done():
		pr.CloseWithError(req.Context().Err())
		return nil, req.Context().Err()
	}
	return &http.Response{
		Status: http.StatusText(w.code), StatusCode: w.code, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.sent, Body: pr, ContentLength: -1, Request: req,
	}, nil
}

// pipeWriter is the handler's side: the status and headers are handed
// over at the first write (or flush), the body goes through the pipe.
type pipeWriter struct {
	header http.Header
	sent   http.Header
	pw     *io.PipeWriter
	once   sync.Once
	ready  chan struct{}
	code   int
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) start(code int) {
	w.once.Do(func() {
		w.code, w.sent = code, w.header.Clone()
		close(w.ready)
	})
}

func (w *pipeWriter) WriteHeader(code int) { w.start(code) }

func (w *pipeWriter) Write(b []byte) (int, error) {
	w.start(http.StatusOK)
	return w.pw.Write(b)
}

// Flush implements http.Flusher: every write already reaches the reader.
func (w *pipeWriter) Flush() { w.start(http.StatusOK) }
