package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"slipway.dev/slipway/internal/apiserver"
	"slipway.dev/slipway/internal/handover"
	"slipway.dev/slipway/internal/telemetry"
)

// A hand-over between generations of `slipway up` on one data dir (the
// protocol is internal/handover's):
//
//	new                                  old (serving)
//	Dial ─────── listeners (fds) ──────► both hold every listening socket
//	Release ──────────────────────────► control plane stops, pods stay,
//	                                     store closed; data plane serves on
//	open the store, build the tables
//	serve (accept on the same sockets)
//	Drain ────────────────────────────► stop accepting, finish in flight,
//	                                     close idle keep-alives, GOAWAY;
//	                                     at --drain-timeout cut the rest
//	                                     (WebSockets 1001), report, exit
//
// A connection is never refused: until the old generation closes its
// copies, both accept from the same queue, and the new one accepts from
// before the old one stops.

// DefaultDrainTimeout is Config.DrainTimeout's default.
const DefaultDrainTimeout = 30 * time.Second

// Listener names both generations agree on.
const (
	lnAPI   = "api"
	lnHTTP  = "http"
	lnHTTPS = "https"
)

func proxyListenerName(a netip.AddrPort) string { return "proxy " + a.String() }

// generations is what this process knows of the hand-overs on its data
// dir: its own generation, the previous one while it drains, and the
// counters /metrics shows.
type generations struct {
	mu       sync.Mutex
	me       handover.Generation
	draining *handover.Generation // the previous one, until its report
	stats    telemetry.GenerationStats
}

func (g *generations) self() handover.Generation {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.me
}

// list is GET /version's: this generation, and the previous one while it
// drains.
func (g *generations) list() []apiserver.Generation {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := []apiserver.Generation{{Number: g.me.Number, Version: g.me.Version, PID: g.me.PID, State: "serving"}}
	if d := g.draining; d != nil {
		out = append(out, apiserver.Generation{Number: d.Number, Version: d.Version, PID: d.PID, State: "draining"})
	}
	return out
}

func (g *generations) metrics() telemetry.GenerationStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.stats
	s.Generation = g.me.Number
	s.Handovers = cloneCounts(g.stats.Handovers)
	s.Drained = cloneCounts(g.stats.Drained)
	return s
}

func cloneCounts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// took records a takeover from old with n listeners.
func (g *generations) took(old handover.Generation, n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.me.Number = old.Number + 1
	g.draining = &old
	g.stats.Listeners = n
}

// ended records the previous generation's drain.
func (g *generations) ended(rep handover.Report, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.draining = nil
	if g.stats.Handovers == nil {
		g.stats.Handovers, g.stats.Drained = map[string]int{}, map[string]int{}
	}
	if err != nil {
		g.stats.Handovers["lost"]++
		return
	}
	g.stats.Handovers[rep.Outcome()]++
	g.stats.Drained["finished"] += rep.Finished
	g.stats.Drained["cut"] += rep.Cut
}

// takeOver connects to the generation serving cfg's data dir, if one
// answers, receives its listeners and has it release the store. It
// returns nil when there is none (a first start, or a crash left the
// socket): then the data dir's lock tells whether another process holds
// it, as before.
func takeOver(ctx context.Context, cfg Config, gens *generations, log *slog.Logger) (*handover.Takeover, error) {
	tk, err := handover.Dial(filepath.Join(cfg.DataDir, handover.SocketName), gens.self())
	if err != nil || tk == nil {
		return nil, err
	}
	log.Info("taking over from the running generation", "from", tk.Old.String(), "listeners", len(tk.Listeners))
	gens.took(tk.Old, len(tk.Listeners))
	if err := tk.Release(ctx); err != nil {
		tk.Close()
		return nil, err
	}
	return tk, nil
}

// inherited hands out the listeners a takeover received; without one it
// has none.
type inherited struct {
	mu sync.Mutex
	tk *handover.Takeover
}

// take returns the listener named name when one was handed over on the
// address the flag asks for (an address with port 0 takes whatever was
// handed over; another address than the old one's is bound anew, and the
// old listener closed with the hand-over).
func (in *inherited) take(name, want string) net.Listener {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.tk == nil {
		return nil
	}
	ln := in.tk.Listeners[name]
	if ln == nil || !sameAddr(want, ln.Addr()) {
		return nil
	}
	return in.tk.Take(name)
}

// listen is net.Listen for want, or the inherited listener named name.
func (in *inherited) listen(name, want string) (net.Listener, error) {
	if ln := in.take(name, want); ln != nil {
		return ln, nil
	}
	return net.Listen("tcp", want)
}

// sameAddr reports whether a flag's address names the listener at have.
func sameAddr(want string, have net.Addr) bool {
	ta, ok := have.(*net.TCPAddr)
	if !ok {
		return false
	}
	host, port, err := net.SplitHostPort(want)
	if err != nil {
		return false
	}
	if port != "0" && port != fmt.Sprint(ta.Port) {
		return false
	}
	if host == "" {
		return ta.IP.IsUnspecified()
	}
	ip := net.ParseIP(host)
	if ip == nil {
		// A name: resolve as Listen would.
		addr, err := net.ResolveTCPAddr("tcp", want)
		return err == nil && addr.IP.Equal(ta.IP)
	}
	return ip.Equal(ta.IP)
}

// owner is this generation's side of a later hand-over: it passes on its
// listeners, releases the store and drains the data plane.
type owner struct {
	cfg     Config
	log     *slog.Logger
	lns     listeners
	data    *dataPlane
	release func(ctx context.Context) error

	// exe and args are what a restart starts: this binary as it was
	// found at start-up (the path: a new build put there is what runs).
	exe  string
	args []string
}

var _ handover.Handler = (*owner)(nil)

// Listeners implements handover.Handler.
func (o *owner) Listeners() []handover.Listener {
	out := []handover.Listener{{Name: lnAPI, L: o.lns.api}, {Name: lnHTTP, L: o.lns.http}}
	if o.lns.https != nil {
		out = append(out, handover.Listener{Name: lnHTTPS, L: o.lns.https})
	}
	for addr, ln := range o.data.px.Listeners() {
		out = append(out, handover.Listener{Name: proxyListenerName(addr), L: ln})
	}
	return out
}

// Release implements handover.Handler.
func (o *owner) Release(ctx context.Context) error { return o.release(ctx) }

// Drain implements handover.Handler.
func (o *owner) Drain() handover.Report { return o.data.drain(o.cfg.DrainTimeout) }

// Restart implements handover.Handler: the binary is started with this
// process's arguments, environment and standard streams; it finds the
// hand-over socket and takes over.
func (o *owner) Restart() (int, <-chan error, error) {
	cmd := exec.Command(o.exe, o.args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = os.Environ()
	if err := cmd.Start(); err != nil {
		return 0, nil, err
	}
	o.log.Info("restarting: started the new generation", "exe", o.exe, "pid", cmd.Process.Pid)
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		if err == nil {
			err = errors.New("exit status 0")
		}
		exited <- err
	}()
	return cmd.Process.Pid, exited, nil
}

// handOverFrom completes a takeover once this generation serves: the old
// one drains, and its report lands in gens.
func handOverFrom(tk *handover.Takeover, cfg Config, gens *generations, started time.Time, log *slog.Logger) {
	wait, err := tk.Drain()
	if err != nil {
		log.Error("hand-over: could not tell the old generation to drain", "err", err)
		gens.ended(handover.Report{}, err)
		tk.Close()
		return
	}
	log.Info("serving; the old generation drains", "from", tk.Old.String(), "tookOverIn", time.Since(started).Round(time.Millisecond))
	go func() {
		defer tk.Close()
		ctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout+30*time.Second)
		defer cancel()
		rep, err := wait(ctx)
		gens.ended(rep, err)
		if err != nil {
			log.Warn("hand-over: no drain report from the old generation", "from", tk.Old.String(), "err", err)
			return
		}
		log.Info("the old generation drained", "from", tk.Old.String(), "open", rep.Open, "finished", rep.Finished, "cut", rep.Cut,
			"took", (time.Duration(rep.Millis) * time.Millisecond).String())
	}()
}
