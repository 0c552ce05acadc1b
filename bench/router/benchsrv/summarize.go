package main

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// run is one wrk run of one contender, a line of run.sh's results file:
// round, connections, contender, req/s, p50 ms, p99 ms, RSS KiB, CPU µs
// per request, requests, socket errors + non-2xx.
type run struct {
	conns          int
	name           string
	rps, p50, p99  float64
	rssKiB, cpuReq float64
	errors         int64
}

func summarize(args []string, out io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("summarize: want one results file")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	var runs []run
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 || strings.HasPrefix(fs[0], "#") {
			continue
		}
		if len(fs) != 10 {
			return fmt.Errorf("%s:%d: %d fields, want 10", args[0], line, len(fs))
		}
		var r run
		nums := make([]float64, 0, 7)
		for _, s := range append([]string{fs[1]}, fs[3:]...) {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return fmt.Errorf("%s:%d: %q: %v", args[0], line, s, err)
			}
			nums = append(nums, v)
		}
		r.conns, r.name = int(nums[0]), fs[2]
		r.rps, r.p50, r.p99, r.rssKiB, r.cpuReq, r.errors = nums[1], nums[2], nums[3], nums[4], nums[5], int64(nums[7])
		runs = append(runs, r)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	// A table per load and connection count: plain HTTP's contenders are
	// bare names, HTTPS's name@load-key (run.sh), compared within their
	// load and key only.
	var loads []string
	for _, r := range runs {
		if _, load := splitName(r.name); !slices.Contains(loads, load) {
			loads = append(loads, load)
		}
	}
	for _, load := range loads {
		if err := summarizeLoad(runs, load, out); err != nil {
			return err
		}
	}
	return nil
}

// splitName splits a contender name into the contender and its load ("",
// plain HTTP, when it has none).
func splitName(name string) (contender, load string) {
	c, l, _ := strings.Cut(name, "@")
	return c, l
}

// loadTitles say what each HTTPS load is in the summary's headings.
var loadTitles = map[string]string{
	"h1":        "HTTPS HTTP/1.1 keep-alive",
	"h2":        "HTTPS h2 (one stream in flight per connection)",
	"handshake": "HTTPS new connection per request (full handshake)",
}

func summarizeLoad(all []run, load string, out io.Writer) error {
	var runs []run
	for _, r := range all {
		if c, l := splitName(r.name); l == load {
			r.name = c
			runs = append(runs, r)
		}
	}
	heading := func(conns int) string { return fmt.Sprintf("%d keep-alive connections", conns) }
	if load != "" {
		kind, key, _ := strings.Cut(load, "-")
		heading = func(conns int) string {
			return fmt.Sprintf("%s, %s: %d connections", cmp.Or(loadTitles[kind], kind), strings.ToUpper(key), conns)
		}
	}
	var conns []int
	var names []string
	for _, r := range runs {
		if !slices.Contains(conns, r.conns) {
			conns = append(conns, r.conns)
		}
		if !slices.Contains(names, r.name) {
			names = append(names, r.name)
		}
	}
	slices.Sort(conns)
	for _, c := range conns {
		type row struct {
			name                    string
			n                       int
			rps, p50, p99, rss, cpu float64
			errors                  int64
		}
		var rows []row
		for _, name := range names {
			var rs []run
			for _, r := range runs {
				if r.conns == c && r.name == name {
					rs = append(rs, r)
				}
			}
			if len(rs) == 0 {
				continue
			}
			med := func(f func(run) float64) float64 {
				v := make([]float64, len(rs))
				for i, r := range rs {
					v[i] = f(r)
				}
				slices.Sort(v)
				if len(v)%2 == 1 {
					return v[len(v)/2]
				}
				return (v[len(v)/2-1] + v[len(v)/2]) / 2
			}
			w := row{name: name, n: len(rs),
				rps: med(func(r run) float64 { return r.rps }), p50: med(func(r run) float64 { return r.p50 }),
				p99: med(func(r run) float64 { return r.p99 }), rss: med(func(r run) float64 { return r.rssKiB }),
				cpu: med(func(r run) float64 { return r.cpuReq })}
			for _, r := range rs {
				w.errors += r.errors
			}
			rows = append(rows, w)
		}
		find := func(name string) *row {
			for i := range rows {
				if rows[i].name == name {
					return &rows[i]
				}
			}
			return nil
		}
		var bestHA *row
		for i := range rows {
			if strings.HasPrefix(rows[i].name, "haproxy") && (bestHA == nil || rows[i].rps > bestHA.rps) {
				bestHA = &rows[i]
			}
		}
		direct, gop := find("direct"), find("goproxy")
		bestName := "none"
		if bestHA != nil {
			bestName = bestHA.name
		}
		fmt.Fprintf(out, "\n== %s (medians of %d runs each; best HAProxy: %s) ==\n", heading(c), rows[0].n, bestName)
		fmt.Fprintf(out, "%-14s %9s %8s %8s %8s %9s | %7s | %7s %7s %7s | %7s %7s | %s\n",
			"contender", "req/s", "p50 ms", "p99 ms", "RSS MB", "CPU µs/r", "÷direct", "÷HA rps", "÷HA cpu", "÷HA p99", "÷goRP", "goRPcpu", "errors")
		for _, w := range rows {
			fmt.Fprintf(out, "%-14s %9.0f %8.2f %8.2f %8.1f %9.1f | %7s | %7s %7s %7s | %7s %7s | %d\n",
				w.name, w.rps, w.p50, w.p99, w.rss/1024, w.cpu,
				ratio(w.rps, direct, func(r *row) float64 { return r.rps }),
				ratio(w.rps, bestHA, func(r *row) float64 { return r.rps }),
				ratio(w.cpu, bestHA, func(r *row) float64 { return r.cpu }),
				ratio(w.p99, bestHA, func(r *row) float64 { return r.p99 }),
				ratio(w.rps, gop, func(r *row) float64 { return r.rps }),
				ratio(w.cpu, gop, func(r *row) float64 { return r.cpu }),
				w.errors)
		}
		if now, base := find("slipway"), find("slipway-base"); now != nil && base != nil {
			fmt.Fprintf(out, "slipway ÷ slipway-base (this tree against BASELINE): req/s %s, CPU/req %s, p99 %s\n",
				ratio(now.rps, base, func(r *row) float64 { return r.rps }),
				ratio(now.cpu, base, func(r *row) float64 { return r.cpu }),
				ratio(now.p99, base, func(r *row) float64 { return r.p99 }))
		}
	}
	return nil
}

func ratio[R any](v float64, base *R, f func(*R) float64) string {
	if base == nil || f(base) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v/f(base))
}
