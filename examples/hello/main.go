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
//	ON_SIGTERM   graceful (default: finish in-flight requests, then exit),
//	             exit (exit at once) or ignore (only SIGKILL ends it)
//	REQUEST_LOG_DIR  append "start|end|term|exit <unix ns>" lines to
//	             DIR/$POD_NAME.log, for tests of the termination order
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
	"path/filepath"
	"strconv"
	"sync"
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
	onTerm := envOr("ON_SIGTERM", "graceful")
	switch onTerm {
	case "graceful", "exit", "ignore":
	default:
		return fmt.Errorf("ON_SIGTERM=%q: must be graceful, exit or ignore", onTerm)
	}
	time.Sleep(startDelay) // the point of START_DELAY: simulate a slow boot
	hostname := envOr("POD_NAME", "local")
	record, closeLog, err := requestLog(os.Getenv("REQUEST_LOG_DIR"), hostname)
	if err != nil {
		return err
	}
	defer closeLog()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		record("start")
		defer record("end")
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

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	for {
		select {
		case err := <-errc:
			return err
		case <-sigs:
		}
		record("term")
		if onTerm == "ignore" {
			log.Printf("hello %s: SIGTERM ignored (ON_SIGTERM=ignore)", version)
			continue
		}
		break
	}
	defer record("exit")
	if onTerm == "exit" {
		log.Printf("hello %s: SIGTERM, exiting at once (ON_SIGTERM=exit)", version)
		return nil
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

// requestLog returns a function appending "<what> <unix ns>" lines to
// dir/name.log, or one doing nothing when dir is empty.
func requestLog(dir, name string) (func(string), func(), error) {
	if dir == "" {
		return func(string) {}, func() {}, nil
	}
	f, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	var mu sync.Mutex
	return func(what string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(f, "%s %d\n", what, time.Now().UnixNano())
	}, func() { f.Close() }, nil
}
