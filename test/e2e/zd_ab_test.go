package e2e

import (
	"time"
)

// zdAB splits one route between two Apps and moves the weights 100/0 →
// 50/50 → 0/100 with `slipway set route-backends` under load: no request
// fails, the split follows the weights, and v1 answers nothing at the end.
func zdAB(p *platform) {
	t := p.t
	a := zdSpec{name: "ab-a", replicas: 2, grace: 30, env: map[string]string{}}
	b := zdSpec{name: "ab-b", replicas: 2, grace: 30, env: map[string]string{}}
	p.zdApply(a, "v1")
	p.zdApply(b, "v2")
	for _, s := range []zdSpec{a, b} {
		waitUntil(t, 120*time.Second, s.name+" rolled out", func() bool { return p.zdRolledOut(s.name, 1, s.replicas) })
	}
	route := `apiVersion: slipway.dev/v1
kind: Route
metadata: {name: ab}
spec:
  host: ab.zd.test
  to: {service: ab-a, weight: 100}
  alternateBackends: [{service: ab-b, weight: 0}]
`
	p.ok("apply", "-f", writeFile(t, t.TempDir(), "ab-route.yaml", route))
	p.zdServing("ab.zd.test", "v1")
	l := startZDLoad(p, "ab.zd.test", "v1")
	l.waitMore(t, "v1", 1000) // 100/0: an answer from v2 would fail

	l.allow("v2")
	p.ok("set", "route-backends", "ab", "ab-a=50", "ab-b=50")
	waitUntil(t, 30*time.Second, "v2 answers at 50/50", func() bool { return l.count("v2") > 0 })
	from := l.snapshot()
	waitUntil(t, 60*time.Second, "4000 answers at 50/50", func() bool { return l.snapshot().total() >= from.total()+4000 })
	to := l.snapshot()
	v1, v2 := to.versions["v1"]-from.versions["v1"], to.versions["v2"]-from.versions["v2"]
	share := float64(v2) * 100 / float64(v1+v2)
	t.Logf("50/50: %d answers from v1, %d from v2 (%.1f%% v2)", v1, v2, share)
	// 4000 fair coin flips stay within 50 ± 5 % but once in 10^10.
	if share < 45 || share > 55 {
		t.Errorf("50/50 split measured %.1f%% on v2, want 50 ± 5", share)
	}

	p.ok("set", "route-backends", "ab", "ab-a=0", "ab-b=100")
	l.settled(t, "v2")
	l.end(t)
	p.ok("delete", "route", "ab")
	for _, s := range []zdSpec{a, b} {
		p.zdDelete(s.name)
	}
}
