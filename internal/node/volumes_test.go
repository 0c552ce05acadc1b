package node

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/runtime"
	"slipway.dev/slipway/internal/runtime/process"
)

// requireMounts skips a test that mounts volumes where the driver cannot,
// or fails it when SLIPWAY_REQUIRE_MOUNTS is set (CI).
func requireMounts(t *testing.T, e *env) {
	t.Helper()
	if c := e.driver.Capabilities().Mounts; !c.Supported {
		if os.Getenv("SLIPWAY_REQUIRE_MOUNTS") != "" {
			t.Fatalf("SLIPWAY_REQUIRE_MOUNTS is set but volumes cannot be mounted here: %s", c.Reason)
		}
		t.Skipf("volumes cannot be mounted here: %s", c.Reason)
	}
}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s; last: %s", d, what, last)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// TestVolumes: a pod naming a claim that does not exist waits, Pending,
// saying which; once the claim exists it runs with the claim and a
// secret mounted; the claim is Bound, measured and names its pod; a
// change of the Secret reaches the running container's file; deleting the
// claim waits for the pod, then deletes it and its data.
func TestVolumes(t *testing.T) {
	e := newEnv(t, Backoff{Base: 50 * time.Millisecond, Max: 50 * time.Millisecond, Reset: time.Hour}, nil)
	requireMounts(t, e)
	ctx := context.Background()
	mnt, out := t.TempDir(), t.TempDir()
	if _, err := e.reg.Create(ctx, &api.Secret{Metadata: api.ObjectMeta{Name: "creds"}, Data: map[string]string{"password": "one"}}); err != nil {
		t.Fatal(err)
	}
	grace := int64(1)
	c := sh("db", `echo -n hi > `+mnt+`/data/f; while :; do cat `+mnt+`/creds/password > `+out+`/pw.tmp && mv `+out+`/pw.tmp `+out+`/pw; sleep 0.05; done`)
	c.VolumeMounts = []api.VolumeMount{{Name: "data", MountPath: mnt + "/data"}, {Name: "creds", MountPath: mnt + "/creds"}}
	if _, err := e.reg.Create(ctx, &api.Pod{Metadata: api.ObjectMeta{Name: "db"}, Spec: api.PodSpec{
		Containers: []api.Container{c}, TerminationGracePeriodSeconds: &grace,
		Volumes: []api.Volume{
			{Name: "data", PersistentVolumeClaim: &api.PersistentVolumeClaimVolumeSource{ClaimName: "db-data"}},
			{Name: "creds", Secret: &api.SecretVolumeSource{SecretName: "creds"}},
		},
	}}); err != nil {
		t.Fatal(err)
	}
	p := e.waitPod("db", "waiting for its claim", 10*time.Second, func(p *api.Pod) bool {
		c := api.FindCondition(p.Status.Conditions, api.PodVolumesReady)
		return c != nil && c.Status == api.ConditionFalse && c.Reason == ReasonClaimNotFound
	})
	if p.Status.Phase != api.PodPending || !strings.Contains(p.Status.Message, `persistentvolumeclaim "db-data" not found`) {
		t.Errorf("pod waiting for its claim: phase %s, message %q; want Pending naming the claim", p.Status.Phase, p.Status.Message)
	}
	claimKind, _ := api.LookupKind("PersistentVolumeClaim")
	if _, err := e.reg.Create(ctx, &api.PersistentVolumeClaim{Metadata: api.ObjectMeta{Name: "db-data"}, Spec: api.PersistentVolumeClaimSpec{
		AccessModes: []string{api.ReadWriteOncePod}, Resources: api.VolumeResourceRequirements{Requests: api.ResourceList{"storage": "1Ki"}}}}); err != nil {
		t.Fatal(err)
	}
	e.waitPod("db", "running with its volumes", 15*time.Second, func(p *api.Pod) bool {
		c := api.FindCondition(p.Status.Conditions, api.PodVolumesReady)
		return p.Status.Phase == api.PodRunning && c != nil && c.Status == api.ConditionTrue
	})
	claim := func() *api.PersistentVolumeClaim {
		o, err := e.reg.Get(ctx, claimKind, api.DefaultProject, "db-data")
		if err != nil {
			return nil
		}
		return o.(*api.PersistentVolumeClaim)
	}
	waitUntil(t, "the claim Bound, measured, naming its pod", 15*time.Second, func() (bool, string) {
		c := claim()
		if c == nil {
			return false, "no claim"
		}
		return c.Status.Phase == api.ClaimBound && c.Status.Used != nil && *c.Status.Used == 2 &&
			len(c.Status.MountedBy) == 1 && c.Status.MountedBy[0] == "db" && c.Status.Capacity["storage"] == "1Ki", fmtStatus(c.Status)
	})
	read := func() string { b, _ := os.ReadFile(filepath.Join(out, "pw")); return string(b) }
	waitUntil(t, "the secret file read by the container", 10*time.Second, func() (bool, string) { return read() == "one", read() })

	o, _ := e.reg.Get(ctx, secretKind, api.DefaultProject, "creds")
	s := o.(*api.Secret)
	s.Data["password"] = "two"
	if _, err := e.reg.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the new secret value in the running container's file", 5*time.Second, func() (bool, string) { return read() == "two", read() })
	if p := e.pod("db"); p.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("a secret change restarted the container: %+v", p.Status.ContainerStatuses[0])
	}

	// Deleting the claim waits for the pod.
	got, err := e.reg.Delete(ctx, claimKind, api.DefaultProject, "db-data", registry.DeleteOptions{})
	if err != nil || got.GetMeta().DeletionTimestamp == nil {
		t.Fatalf("deleting a claim in use: %v, %v; want it marked for deletion", got, err)
	}
	if claim() == nil {
		t.Fatal("a claim in use was deleted")
	}
	if _, err := e.reg.Delete(ctx, podKind, api.DefaultProject, "db", registry.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the claim deleted once its pod stopped", 20*time.Second, func() (bool, string) {
		c := claim()
		if c == nil {
			return true, ""
		}
		return false, fmtStatus(c.Status)
	})
	if _, err := os.Stat(filepath.Join(e.dir, "runtime", "claims", "default", "db-data")); !os.IsNotExist(err) {
		t.Errorf("the data of a deleted claim is still there: %v", err)
	}
}

func fmtStatus(s api.PersistentVolumeClaimStatus) string {
	used := "nil"
	if s.Used != nil {
		used = strconv.FormatInt(*s.Used, 10)
	}
	return "phase=" + s.Phase + " used=" + used + " mountedBy=" + strings.Join(s.MountedBy, ",")
}

// TestEmptyDirOverSizeLimit: an emptyDir on disk over its sizeLimit is
// measured and reported (VolumeFull condition and event), not enforced.
func TestEmptyDirOverSizeLimit(t *testing.T) {
	e := newEnv(t, DefaultBackoff, nil)
	requireMounts(t, e)
	mnt := t.TempDir()
	grace := int64(1)
	c := sh("w", `head -c 2048 /dev/zero > `+mnt+`/s/f; sleep 60`)
	c.VolumeMounts = []api.VolumeMount{{Name: "s", MountPath: mnt + "/s"}}
	if _, err := e.reg.Create(context.Background(), &api.Pod{Metadata: api.ObjectMeta{Name: "full"}, Spec: api.PodSpec{
		Containers: []api.Container{c}, TerminationGracePeriodSeconds: &grace,
		Volumes: []api.Volume{{Name: "s", EmptyDir: &api.EmptyDirVolumeSource{SizeLimit: "1Ki"}}},
	}}); err != nil {
		t.Fatal(err)
	}
	p := e.waitPod("full", "VolumeFull", 15*time.Second, func(p *api.Pod) bool {
		c := api.FindCondition(p.Status.Conditions, api.ConditionVolumeFull)
		return c != nil && c.Status == api.ConditionTrue
	})
	if c := api.FindCondition(p.Status.Conditions, api.ConditionVolumeFull); !strings.Contains(c.Message, "emptyDir s uses 2048 bytes, more than its sizeLimit 1Ki") {
		t.Errorf("VolumeFull message %q", c.Message)
	}
	waitUntil(t, "a VolumeFull event", 5*time.Second, func() (bool, string) {
		for _, ev := range e.events("full") {
			if ev.Reason == api.ConditionVolumeFull {
				return true, ""
			}
		}
		return false, ""
	})
}

// noMounts is a driver that cannot give containers their own mount
// namespace (the process runtime when Slipway is not root).
type noMounts struct{ *process.Driver }

func (d noMounts) Capabilities() runtime.Capabilities {
	c := d.Driver.Capabilities()
	c.Mounts = runtime.Capability{Reason: "volume mounts need a private mount namespace per container, which needs root"}
	return c
}

// TestMountRefusedWithoutNamespaces: where mounts cannot be made, a pod
// that mounts a volume waits, Pending, saying why, rather than running
// with its mountPath pointing elsewhere.
func TestMountRefusedWithoutNamespaces(t *testing.T) {
	e := newEnv(t, DefaultBackoff, nil)
	a := New(Options{Reg: e.reg, Driver: noMounts{e.driver}})
	c := sh("web", "true")
	c.VolumeMounts = []api.VolumeMount{{Name: "s", MountPath: "/srv/s"}}
	w := newPodWorker(a, &api.Pod{Metadata: api.ObjectMeta{Name: "p", Project: api.DefaultProject, UID: "u"}, Spec: api.PodSpec{
		Containers: []api.Container{c}, Volumes: []api.Volume{{Name: "s", EmptyDir: &api.EmptyDirVolumeSource{}}}}})
	_, err := w.resolveVolumes(context.Background())
	pv, ok := err.(*pendingVolumes)
	if !ok || pv.cond.Reason != ReasonMountUnsupported || pv.cond.Status != api.ConditionFalse ||
		pv.cond.Message != "container web: mountPath /srv/s refused: volume mounts need a private mount namespace per container, which needs root" {
		t.Fatalf("resolveVolumes without mount namespaces: %v, want a MountUnsupported condition naming the mountPath and why", err)
	}
	st := w.lc.step(observation{kind: obsVolumesPending, volumes: &pv.cond}, time.Now())
	if st.status.Phase != api.PodPending || st.status.Reason != ReasonMountUnsupported || len(st.actions) != 1 || st.actions[0].kind != actEvent {
		t.Errorf("lifecycle of a pod waiting for its volumes: %+v, want Pending with the reason and one FailedMount event, nothing started", st)
	}
	if c := api.FindCondition(st.status.Conditions, api.PodVolumesReady); c == nil || c.Status != api.ConditionFalse {
		t.Errorf("conditions %+v, want VolumesReady False", st.status.Conditions)
	}
}
