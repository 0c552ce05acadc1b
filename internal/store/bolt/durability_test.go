package bolt

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/store"
)

// The durability test runs this test binary again as a writer process,
// SIGKILLs it at a random moment and checks that the file holds every
// write the writer saw acknowledged, and nothing it did not attempt.
//
// The writer prints "BEGIN g seq kind key expected" before each call and
// "ACK g seq rev" after the call returned, from helperWriters goroutines
// writing at once (so that kills also land inside group commits). Each
// goroutine owns the keys /d/<g>/<slot> and has at most one call in flight.
const (
	helperEnvPath = "SLIPWAY_BOLT_HELPER_PATH"
	helperEnvIter = "SLIPWAY_BOLT_HELPER_ITER"
	helperWriters = 4
	helperSlots   = 6
)

// TestHelperWriter is the writer process; it does nothing unless started
// by TestDurabilityUnderSIGKILL.
func TestHelperWriter(t *testing.T) {
	path := os.Getenv(helperEnvPath)
	if path == "" {
		t.Skip("helper process for TestDurabilityUnderSIGKILL")
	}
	iter, _ := strconv.Atoi(os.Getenv(helperEnvIter))
	s, err := Open(path, Options{})
	if err != nil {
		fmt.Printf("ERROR open: %v\n", err)
		os.Exit(2)
	}
	ctx := context.Background()
	var out sync.Mutex
	say := func(format string, args ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	fail := func(format string, args ...any) {
		say("ERROR "+format, args...)
		os.Exit(2)
	}
	res, err := s.List(ctx, "/d/", store.ListOptions{})
	if err != nil {
		fail("list: %v", err)
	}
	mods := map[string]int64{}
	for _, kv := range res.KVs {
		mods[kv.Key] = kv.ModRevision
	}
	// The parent kills us long before this; the limit only stops an
	// orphan.
	stop := time.Now().Add(30 * time.Second)
	var wg sync.WaitGroup
	for g := range helperWriters {
		mine := map[string]int64{}
		for k, v := range mods {
			if strings.HasPrefix(k, fmt.Sprintf("/d/%d/", g)) {
				mine[k] = v
			}
		}
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(iter), uint64(g)))
			for seq := 0; time.Now().Before(stop); seq++ {
				key := fmt.Sprintf("/d/%d/%d", g, rnd.IntN(helperSlots))
				cur, ok := mine[key]
				value := helperValue(iter, g, seq)
				switch {
				case !ok:
					say("BEGIN %d %d create %s 0", g, seq, key)
					rev, err := s.Create(ctx, key, value)
					if err != nil {
						fail("create %s: %v", key, err)
					}
					mine[key] = rev
					say("ACK %d %d %d", g, seq, rev)
				case rnd.IntN(8) == 0:
					say("BEGIN %d %d stale %s %d", g, seq, key, cur+1000)
					if _, err := s.Update(ctx, key, value, cur+1000); !errors.Is(err, store.ErrConflict) {
						fail("stale update %s: err = %v, want ErrConflict", key, err)
					}
					say("ACK %d %d 0", g, seq)
				case rnd.IntN(4) == 0:
					say("BEGIN %d %d delete %s %d", g, seq, key, cur)
					rev, _, err := s.Delete(ctx, key, cur)
					if err != nil {
						fail("delete %s: %v", key, err)
					}
					delete(mine, key)
					say("ACK %d %d %d", g, seq, rev)
				default:
					say("BEGIN %d %d update %s %d", g, seq, key, cur)
					rev, err := s.Update(ctx, key, value, cur)
					if err != nil {
						fail("update %s: %v", key, err)
					}
					mine[key] = rev
					say("ACK %d %d %d", g, seq, rev)
				}
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}

// helperValue varies in size so that values overflow pages now and then.
func helperValue(iter, g, seq int) []byte {
	return fmt.Appendf(nil, "i%d-g%d-s%d|%s", iter, g, seq, strings.Repeat("x", (seq*397+g*131)%3000))
}

type helperOp struct {
	g, seq   int
	kind     string
	key      string
	expected int64
	rev      int64 // 0 until acknowledged
	acked    bool
}

func TestDurabilityUnderSIGKILL(t *testing.T) {
	iterations := 30
	if testing.Short() {
		iterations = 8
	}
	path := filepath.Join(t.TempDir(), "slipway.db")
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	// model is the verified content of /d/ after the last iteration.
	model := map[string]store.KeyValue{}
	var rev int64
	for iter := range iterations {
		killAfter := 1 + rnd.IntN(60)
		killDelay := time.Duration(rnd.IntN(3000)) * time.Microsecond
		ops := runHelper(t, path, iter, killAfter, killDelay)
		rev = verifyAfterKill(t, path, iter, rev, ops, model)
		if t.Failed() {
			t.Fatalf("iteration %d (killed %v after %d acknowledgements) failed", iter, killDelay, killAfter)
		}
	}
	if rev < int64(iterations) {
		t.Errorf("only %d revisions written in %d iterations", rev, iterations)
	}
}

// runHelper starts the writer, kills it with SIGKILL once killAfter
// writes are acknowledged, and returns every call it began, in order.
func runHelper(t *testing.T, path string, iter, killAfter int, killDelay time.Duration) []*helperOp {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnvPath+"="+path, helperEnvIter+"="+strconv.Itoa(iter))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed { // a t.Fatal below: do not leave a writer running
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	lines := make(chan string)
	go func() {
		defer close(lines)
		r := bufio.NewReader(stdout)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return // a torn last line is an unacknowledged write
			}
			lines <- strings.TrimSuffix(line, "\n")
		}
	}()

	var ops []*helperOp
	pending := map[[2]int]*helperOp{}
	acks := 0
	deadline := time.After(30 * time.Second)
	for {
		var line string
		var ok bool
		select {
		case line, ok = <-lines:
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("writer process: no output for 30s")
		}
		if !ok {
			break
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 6 && f[0] == "BEGIN":
			op := &helperOp{g: atoi(t, f[1]), seq: atoi(t, f[2]), kind: f[3], key: f[4], expected: int64(atoi(t, f[5]))}
			pending[[2]int{op.g, op.seq}] = op
			ops = append(ops, op)
		case len(f) == 4 && f[0] == "ACK":
			id := [2]int{atoi(t, f[1]), atoi(t, f[2])}
			op := pending[id]
			if op == nil {
				t.Fatalf("ACK without BEGIN: %q", line)
			}
			delete(pending, id)
			op.rev, op.acked = int64(atoi(t, f[3])), true
			acks++
		case len(f) > 0 && f[0] == "ERROR":
			t.Fatalf("writer process: %s", line)
		}
		if acks >= killAfter && !killed {
			// A kill right at an acknowledgement always lands before the
			// next commit; a random delay lets it land anywhere in one.
			time.AfterFunc(killDelay, func() { cmd.Process.Kill() })
			killed = true
		}
	}
	if !killed {
		t.Fatalf("writer process exited before the kill: %v", cmd.Wait())
	}
	cmd.Wait() // reports the SIGKILL
	return ops
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("bad number %q in writer output", s)
	}
	return n
}

// verifyAfterKill reopens the file and checks it against the operations:
// history after prev holds exactly the acknowledged writes at their
// revisions plus, at the remaining revisions, some of the unacknowledged
// ones (each at most once); the keys are what history says. It updates
// model and returns the revision.
func verifyAfterKill(t *testing.T, path string, iter int, prev int64, ops []*helperOp, model map[string]store.KeyValue) int64 {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatalf("bbolt consistency check after SIGKILL: %v", err)
	}
	ctx := t.Context()
	rev, err := s.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}

	byRev := map[int64]*helperOp{}
	var lastAck int64
	var unacked []*helperOp
	for _, op := range ops {
		switch {
		case !op.acked && op.kind != "stale":
			unacked = append(unacked, op)
		case op.acked && op.kind != "stale":
			byRev[op.rev] = op
			lastAck = max(lastAck, op.rev)
		}
	}
	if rev < lastAck {
		t.Fatalf("revision %d after reopen is below the last acknowledged revision %d", rev, lastAck)
	}
	if extra := rev - prev - int64(len(byRev)); extra < 0 || extra > int64(len(unacked)) {
		t.Fatalf("revision went from %d to %d with %d acknowledged and %d unacknowledged writes", prev, rev, len(byRev), len(unacked))
	}

	t.Logf("iteration %d: revision %d -> %d: %d acknowledged writes, %d landed unacknowledged (of %d in flight)",
		iter, prev, rev, len(byRev), rev-prev-int64(len(byRev)), len(unacked))
	w, err := s.Watch(ctx, "/", prev)
	if err != nil {
		t.Fatal(err)
	}
	for r := prev + 1; r <= rev; r++ {
		var ev store.Event
		select {
		case ev = <-w.Events():
		case <-time.After(10 * time.Second):
			t.Fatalf("history: no event for revision %d", r)
		}
		if ev.Revision() != r {
			t.Fatalf("history: event revision %d, want %d", ev.Revision(), r)
		}
		op := byRev[r]
		if op == nil {
			// Not acknowledged: it must be one of the calls in flight.
			i := slices.IndexFunc(unacked, func(o *helperOp) bool { return matches(o, iter, ev) })
			if i < 0 {
				t.Fatalf("history: revision %d is %v %q, which no writer began", r, ev.Type, ev.KV.Key)
			}
			op = unacked[i]
			unacked = slices.Delete(unacked, i, i+1)
		} else if !matches(op, iter, ev) {
			t.Fatalf("history: revision %d is %v %q, want the acknowledged %s of %q", r, ev.Type, ev.KV.Key, op.kind, op.key)
		}
		if cur, ok := model[op.key]; op.kind != "create" && (!ok || cur.ModRevision != op.expected) {
			t.Fatalf("history: revision %d %s of %q expected revision %d, key was %v", r, op.kind, op.key, op.expected, cur)
		}
		switch ev.Type {
		case store.EventPut:
			model[op.key] = ev.KV
		case store.EventDelete:
			delete(model, op.key)
		}
	}

	res, err := s.List(ctx, "/", store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.SortedFunc(func(yield func(store.KeyValue) bool) {
		for _, kv := range model {
			if !yield(kv) {
				return
			}
		}
	}, func(a, b store.KeyValue) int { return strings.Compare(a.Key, b.Key) })
	// bytes.Equal, not cmp's element-wise walk: the values are kilobytes.
	if diff := cmp.Diff(want, res.KVs, cmp.Comparer(bytes.Equal)); diff != "" && len(want)+len(res.KVs) > 0 {
		t.Fatalf("keys after SIGKILL differ from acknowledged history (-want +got):\n%s", diff)
	}
	return rev
}

func matches(op *helperOp, iter int, ev store.Event) bool {
	if ev.KV.Key != op.key {
		return false
	}
	switch op.kind {
	case "create":
		return ev.Type == store.EventPut && ev.PrevKV == nil && string(ev.KV.Value) == string(helperValue(iter, op.g, op.seq))
	case "update":
		return ev.Type == store.EventPut && ev.PrevKV != nil && ev.PrevKV.ModRevision == op.expected &&
			string(ev.KV.Value) == string(helperValue(iter, op.g, op.seq))
	case "delete":
		return ev.Type == store.EventDelete && ev.PrevKV != nil && ev.PrevKV.ModRevision == op.expected
	}
	return false
}
