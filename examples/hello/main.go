// Command hello is Slipway's sample app: an HTTP server that says its
// VERSION. It binds $HOST:$PORT as every Slipway app does, answers its
// readiness probe on /healthz, and finishes in-flight requests on SIGTERM.
//
// Environment knobs for trying deployments:
//
//	VERSION      what / answers (default "v1")
//	START_DELAY  wait this long before listening, e.g. 3s (a slow start)
//	FAIL_RATE    share of / requests answered 500, 0 to 1 (a bad version)
//	SLOW         added latency on /, e.g. 200ms (a slow version)
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	version := envOr("VERSION", "v1")
	addr := net.JoinHostPort(envOr("HOST", "127.0.0.1"), envOr("PORT", "8080"))
	startDelay, err := durationEnv("START_DELAY")
	if err != nil {
		return err
	}
	slow, err := durationEnv("SLOW")
	if err != nil {
		return err
	}
	failRate := 0.0
	if s := os.Getenv("FAIL_RATE"); s != "" {
		if failRate, err = strconv.ParseFloat(s, 64); err != nil || failRate < 0 || failRate > 1 {
			return fmt.Errorf("FAIL_RATE=%q: must be a number from 0 to 1", s)
		}
	}
	time.Sleep(startDelay) // the point of START_DELAY: simulate a slow boot
	hostname := envOr("POD_NAME", "local")

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if slow > 0 {
			time.Sleep(slow)
		}
		w.Header().Set("X-Version", version)
		w.Header().Set("X-Pod", hostname)
		w.Header().Set("X-Pid", strconv.Itoa(os.Getpid()))
		if failRate > 0 && rand.Float64() < failRate {
			http.Error(w, "hello "+version+": failing on purpose (FAIL_RATE)", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "hello from %s (%s)\n", version, hostname)
	})

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("hello %s listening on %s", version, ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Printf("hello %s: SIGTERM, finishing in-flight requests", version)
	sctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

func durationEnv(k string) (time.Duration, error) {
	s := os.Getenv(k)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: must be a duration such as 500ms or 3s", k, s)
	}
	return d, nil
}
