// Command testapp is what the runtime driver harness runs as a container: a
// small static HTTP server on $HOST:$PORT that can misbehave on demand.
//
// Flags act at start-up, in this order: -ignore-term, -say, -print-env, -bytes, -lines,
// -cat, -tty, -alloc, -spawn-child, -kill-self, -exit, -sleep; then, if PORT is set, it
// serves:
//
//	/healthz           "ok"
//	/env               the environment as a JSON array
//	/cwd               the working directory
//	/pid, /child       its pid, and that of the child -spawn-child started
//	/print?n=N&tag=T   N lines "out <i> T" to stdout, each followed by "err <i> T" to stderr
//	/write?lines=N&size=S&last=M  N lines of S bytes, then the line M, to stdout in one write
//	/spin?ms=N         busy for N ms of wall time; answers the CPU ms it used
//	/fetch?url=U       GETs U and answers with its status and body
//	/exit?code=N       answers, then exits with code N
//	/file?path=P       the file's contents (500 and the error if it cannot be read)
//	/mode?path=P       the file's permission bits, in octal
//	/writefile?path=P&data=D  writes D to P (500 and the error if it cannot)
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	var (
		say        = flag.String("say", "", "print this line to stdout")
		printEnv   = flag.Bool("print-env", false, "print cwd=<dir> and then each env entry to stdout")
		nbytes     = flag.Int("bytes", 0, "print this many bytes to stdout (lines of 1 KiB)")
		lines      = flag.Int("lines", 0, "print this many lines to stdout and to stderr, alternating")
		alloc      = flag.Int64("alloc", 0, "allocate and touch this many bytes")
		spawnChild = flag.Bool("spawn-child", false, "start a child process that ignores SIGTERM, in the same process group")
		killSelf   = flag.Int("kill-self", 0, "send this signal to itself")
		exitCode   = flag.Int("exit", -1, "exit with this code (a negative code serves instead)")
		sleep      = flag.Duration("sleep", 0, "sleep this long, then exit 0")
		ignoreTerm = flag.Bool("ignore-term", false, "ignore SIGTERM")
		cat        = flag.Bool("cat", false, "copy stdin to stdout, then print \"stdin closed\" to stderr")
		tty        = flag.Bool("tty", false, "print \"tty <cols>x<rows>\" (or \"not a tty\" and exit 1), then answer each stdin line \"size\" with \"size <cols>x<rows>\"; \"exit\" exits 3")
	)
	flag.Parse()

	if *ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	}
	if *say != "" {
		fmt.Println(*say)
	}
	if *printEnv {
		wd, _ := os.Getwd()
		fmt.Println("cwd=" + wd)
		for _, e := range os.Environ() {
			fmt.Println(e)
		}
	}
	if *nbytes > 0 {
		line := strings.Repeat("x", 1023) + "\n"
		for n := *nbytes; n > 0; n -= len(line) {
			os.Stdout.WriteString(line[:min(n, len(line))])
		}
	}
	printLines(*lines, os.Getenv("LOG_TAG"))
	if *cat {
		io.Copy(os.Stdout, os.Stdin)
		fmt.Fprintln(os.Stderr, "stdin closed")
	}
	if *tty {
		terminal()
	}
	var hold [][]byte
	for n := *alloc; n > 0; n -= 1 << 20 {
		b := make([]byte, 1<<20)
		for i := range b {
			b[i] = byte(i)
		}
		hold = append(hold, b)
	}
	childPID := 0
	if *spawnChild {
		// The child ignores SIGTERM: only a driver that kills the whole
		// group once the leader is gone gets rid of it.
		child := exec.Command(os.Args[0], "-ignore-term", "-sleep", "1h")
		if err := child.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "spawning child:", err)
			os.Exit(70)
		}
		childPID = child.Process.Pid
	}
	if *killSelf != 0 {
		syscall.Kill(os.Getpid(), syscall.Signal(*killSelf))
		time.Sleep(time.Minute) // the signal ends us
	}
	if *exitCode >= 0 {
		os.Exit(*exitCode)
	}
	if *sleep > 0 {
		time.Sleep(*sleep)
		os.Exit(0)
	}
	if os.Getenv("PORT") == "" {
		return
	}
	serve(childPID, hold)
}

func printLines(n int, tag string) {
	for i := 1; i <= n; i++ {
		fmt.Fprintf(os.Stdout, "out %d %s\n", i, tag)
		fmt.Fprintf(os.Stderr, "err %d %s\n", i, tag)
	}
}

func serve(childPID int, hold [][]byte) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	mux.HandleFunc("/env", func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(os.Environ()) })
	mux.HandleFunc("/cwd", func(w http.ResponseWriter, r *http.Request) {
		wd, _ := os.Getwd()
		fmt.Fprint(w, wd)
	})
	mux.HandleFunc("/file", func(w http.ResponseWriter, r *http.Request) {
		b, err := os.ReadFile(r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("/mode", func(w http.ResponseWriter, r *http.Request) {
		fi, err := os.Stat(r.URL.Query().Get("path"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%o", fi.Mode().Perm())
	})
	mux.HandleFunc("/writefile", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if err := os.WriteFile(q.Get("path"), []byte(q.Get("data")), 0o644); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/pid", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, os.Getpid()) })
	mux.HandleFunc("/child", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, childPID) })
	mux.HandleFunc("/print", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		printLines(n, r.URL.Query().Get("tag"))
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/write", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		n, _ := strconv.Atoi(q.Get("lines"))
		size, _ := strconv.Atoi(q.Get("size"))
		line := strings.Repeat("w", max(size-1, 0)) + "\n"
		// One write: the kernel orders it wholly before or after a
		// concurrent truncation, which keeps rotation tests exact.
		os.Stdout.WriteString(strings.Repeat(line, n) + q.Get("last") + "\n")
		fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/spin", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		before := cpuTime()
		end := time.Now().Add(time.Duration(ms) * time.Millisecond)
		for time.Now().Before(end) {
			for i := range 10000 {
				sink += i
			}
		}
		fmt.Fprint(w, (cpuTime() - before).Milliseconds())
	})
	mux.HandleFunc("/fetch", func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(r.URL.Query().Get("url"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		fmt.Fprint(w, "bye")
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		go func() {
			time.Sleep(50 * time.Millisecond) // let the answer leave
			os.Exit(code)
		}()
	})
	ln, err := net.Listen("tcp", net.JoinHostPort(os.Getenv("HOST"), os.Getenv("PORT")))
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(71)
	}
	_ = hold
	if err := http.Serve(ln, mux); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(72)
	}
}

var sink int // keeps the spin loop from being optimised away

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// terminal reports stdin's terminal size on demand (the exec TTY test).
func terminal() {
	size := func() (string, bool) {
		var ws [4]uint16 // rows, cols, xpixel, ypixel
		_, _, e := syscall.Syscall(syscall.SYS_IOCTL, 0, syscall.TIOCGWINSZ, uintptr(unsafe.Pointer(&ws)))
		return fmt.Sprintf("%dx%d", ws[1], ws[0]), e == 0
	}
	sz, ok := size()
	if !ok {
		fmt.Println("not a tty")
		os.Exit(1)
	}
	fmt.Println("tty " + sz)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		switch strings.TrimSpace(sc.Text()) {
		case "size":
			sz, _ := size()
			fmt.Println("size " + sz)
		case "exit":
			os.Exit(3)
		}
	}
	os.Exit(0)
}
