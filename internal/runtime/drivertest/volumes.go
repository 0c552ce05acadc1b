package drivertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway/internal/runtime"
)

// requireMountsVar makes volume tests fail instead of skipping where the
// driver cannot mount (the process driver without root).
const requireMountsVar = "SLIPWAY_REQUIRE_MOUNTS"

func (h *harness) volumeDriver(t *testing.T, e *env) runtime.VolumeDriver {
	t.Helper()
	vd, ok := e.d.(runtime.VolumeDriver)
	if !ok {
		t.Fatalf("driver %s does not implement runtime.VolumeDriver", e.d.Name())
	}
	if c := e.d.Capabilities().Mounts; !c.Supported {
		if os.Getenv(requireMountsVar) != "" {
			t.Fatalf("%s is set but volumes cannot be mounted here: %s", requireMountsVar, c.Reason)
		}
		t.Skipf("volumes cannot be mounted here: %s", c.Reason)
	}
	return vd
}

// volPod creates a sandbox with volumes, removed when the test ends.
func (e *env) volPod(vols ...runtime.Volume) (uid, ip string) {
	e.t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	uid = "pod-" + hex.EncodeToString(b)
	cfg := podConfig(uid)
	cfg.Volumes = vols
	sb, err := e.d.CreateSandbox(context.Background(), cfg)
	if err != nil {
		e.t.Fatalf("CreateSandbox with volumes: %v", err)
	}
	e.adoptPod(uid)
	return uid, sb.IP.String()
}

func (e *env) remove(uid string) {
	e.t.Helper()
	if err := e.d.RemoveSandbox(context.Background(), uid); err != nil {
		e.t.Fatalf("RemoveSandbox: %v", err)
	}
	e.mu.Lock()
	for i, p := range e.pods {
		if p == uid {
			e.pods = append(e.pods[:i], e.pods[i+1:]...)
			break
		}
	}
	e.mu.Unlock()
}

// removeWithClaim stops the containers, removes the pod, then its claim.
func (e *env) removeWithClaim(vd runtime.VolumeDriver, uid, claim string, containers ...string) {
	e.t.Helper()
	for _, c := range containers {
		e.stop(uid, c, time.Second)
	}
	e.remove(uid)
	if err := vd.RemoveClaim(context.Background(), "default", claim); err != nil {
		e.t.Errorf("RemoveClaim(%s): %v", claim, err)
	}
}

// serveMounting starts the test app with mounts and waits until it answers.
func (e *env) serveMounting(uid, ip, name string, mounts ...runtime.Mount) (runtime.ContainerConfig, string) {
	e.t.Helper()
	port := freePort(e.t, ip)
	c := e.app(name, ip, port, nil)
	c.Mounts = mounts
	e.start(uid, c)
	get(e.t, ip, port, "/healthz")
	return c, port
}

func readFile(t *testing.T, ip, port, p string) (string, error) {
	t.Helper()
	return tryGet("http://" + ip + ":" + port + "/file?path=" + url.QueryEscape(p))
}

func writeFile(ip, port, p, data string) error {
	_, err := tryGet("http://" + ip + ":" + port + "/writefile?path=" + url.QueryEscape(p) + "&data=" + url.QueryEscape(data))
	return err
}

func mustRead(t *testing.T, ip, port, p, want, when string) {
	t.Helper()
	got, err := readFile(t, ip, port, p)
	if err != nil || got != want {
		t.Fatalf("%s: reading %s: got %q, %v; want %q", when, p, got, err, want)
	}
}

// mountDir is a mount path that exists nowhere else: on the process
// runtime mount points are made on the machine's own filesystem.
func mountDir(t *testing.T) string {
	return path.Join(t.TempDir(), "mnt")
}

func claimName(t *testing.T) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "claim-" + hex.EncodeToString(b)
}

// testClaims: a claim's data survives a container restart, the pod's
// replacement and a driver restart; two pods mount different claims at
// the same path; a claim is measured and removed only once unmounted.
func (h *harness) testClaims(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := h.envOn(t, dir)
	vd := h.volumeDriver(t, e)
	ctx := context.Background()
	at := mountDir(t)
	one, two := claimName(t), claimName(t)
	claimVol := func(c string) runtime.Volume {
		return runtime.Volume{Name: "data", Claim: &runtime.ClaimVolume{Project: "default", Name: c, SizeBytes: 1 << 20}}
	}
	mount := runtime.Mount{Volume: "data", MountPath: at}

	uid, ip := e.volPod(claimVol(one))
	_, port := e.serveMounting(uid, ip, "web", mount)
	if err := writeFile(ip, port, at+"/f", "hello"); err != nil {
		t.Fatalf("writing into the claim: %v", err)
	}
	uid2, ip2 := e.volPod(claimVol(two))
	_, port2 := e.serveMounting(uid2, ip2, "web", mount)
	if got, err := readFile(t, ip2, port2, at+"/f"); err == nil {
		t.Fatalf("a pod mounting another claim at the same path read %q", got)
	}
	if err := writeFile(ip2, port2, at+"/f", "other"); err != nil {
		t.Fatal(err)
	}
	mustRead(t, ip, port, at+"/f", "hello", "the first pod after the second wrote its own claim")

	// Container restart.
	e.stop(uid, "web", time.Second)
	e.exit(uid, "web", 1)
	_, port = e.serveMounting(uid, ip, "web", mount)
	mustRead(t, ip, port, at+"/f", "hello", "after a container restart")

	if n, err := vd.ClaimUsage(ctx, "default", one); err != nil || n != int64(len("hello")) {
		t.Errorf("ClaimUsage = %d, %v; want %d", n, err, len("hello"))
	}
	if err := vd.RemoveClaim(ctx, "default", one); !isErr(err, runtime.ErrConflict) {
		t.Errorf("RemoveClaim of a mounted claim: %v, want ErrConflict", err)
	}

	// Pod replacement.
	e.stop(uid, "web", time.Second)
	e.remove(uid)
	uid, ip = e.volPod(claimVol(one))
	_, port = e.serveMounting(uid, ip, "web", mount)
	mustRead(t, ip, port, at+"/f", "hello", "in a new pod")

	// Driver (Slipway) restart: the adopted container still reads it,
	// and so does a pod started by the new driver.
	e.closeNow()
	e2 := h.envOn(t, dir)
	e2.adoptPod(uid)
	e2.adoptPod(uid2)
	if _, err := e2.d.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	mustRead(t, ip, port, at+"/f", "hello", "in the adopted container after a restart")
	e2.stop(uid, "web", time.Second)
	e2.remove(uid)
	uid, ip = e2.volPod(claimVol(one))
	_, port = e2.serveMounting(uid, ip, "web", mount)
	mustRead(t, ip, port, at+"/f", "hello", "in a pod of the restarted driver")

	// Removed once no pod mounts it: a new pod starts empty.
	e2.stop(uid, "web", time.Second)
	e2.remove(uid)
	vd2 := e2.d.(runtime.VolumeDriver)
	if err := vd2.RemoveClaim(ctx, "default", one); err != nil {
		t.Fatalf("RemoveClaim of an unmounted claim: %v", err)
	}
	uid, ip = e2.volPod(claimVol(one))
	_, port = e2.serveMounting(uid, ip, "web", mount)
	if got, err := readFile(t, ip, port, at+"/f"); err == nil {
		t.Errorf("a removed claim's data is back: %q", got)
	}
	e2.stop(uid, "web", time.Second)
	e2.remove(uid)
	e2.stop(uid2, "web", time.Second)
	e2.remove(uid2)
	for _, c := range []string{one, two} {
		if err := vd2.RemoveClaim(ctx, "default", c); err != nil {
			t.Errorf("RemoveClaim(%s): %v", c, err)
		}
	}
}

// testEmptyDir: an emptyDir (on disk and in memory) survives a container
// restart, not the pod's replacement.
func (h *harness) testEmptyDir(t *testing.T) {
	t.Parallel()
	e := h.newEnv(t)
	h.volumeDriver(t, e)
	for _, memory := range []bool{false, true} {
		at := mountDir(t)
		vol := runtime.Volume{Name: "scratch", EmptyDir: &runtime.EmptyDirVolume{Memory: memory, SizeBytes: 1 << 20}}
		mount := runtime.Mount{Volume: "scratch", MountPath: at}
		uid, ip := e.volPod(vol)
		_, port := e.serveMounting(uid, ip, "web", mount)
		if err := writeFile(ip, port, at+"/f", "scratch"); err != nil {
			t.Fatalf("memory=%v: writing into the emptyDir: %v", memory, err)
		}
		e.stop(uid, "web", time.Second)
		e.exit(uid, "web", 1)
		_, port = e.serveMounting(uid, ip, "web", mount)
		if got, err := readFile(t, ip, port, at+"/f"); err != nil || got != "scratch" {
			if !(memory && e.d.Name() == "docker") { // docs/storage.md: a per-run tmpfs there
				t.Errorf("memory=%v: after a container restart: %q, %v; want the file kept", memory, got, err)
			}
		}
		e.stop(uid, "web", time.Second)
		e.remove(uid)
		uid, ip = e.volPod(vol)
		_, port = e.serveMounting(uid, ip, "web", mount)
		if got, err := readFile(t, ip, port, at+"/f"); err == nil {
			t.Errorf("memory=%v: a new pod's emptyDir holds the old pod's file: %q", memory, got)
		}
	}
}

// testFilesUpdate: a secret's files are there with their mode, read-only,
// and replaced in place, without a restart, by WriteFiles.
func (h *harness) testFilesUpdate(t *testing.T) {
	t.Parallel()
	e := h.newEnv(t)
	vd := h.volumeDriver(t, e)
	at := mountDir(t)
	vol := runtime.Volume{Name: "creds", Files: &runtime.FilesVolume{Files: []runtime.File{
		{Path: "password", Data: []byte("one"), Mode: 0o400},
		{Path: "sub/user", Data: []byte("app"), Mode: 0o440},
	}}}
	uid, ip := e.volPod(vol)
	_, port := e.serveMounting(uid, ip, "web", runtime.Mount{Volume: "creds", MountPath: at})
	pid := e.status(uid, "web").PID
	mustRead(t, ip, port, at+"/password", "one", "a secret file")
	mustRead(t, ip, port, at+"/sub/user", "app", "a secret file in a directory")
	if m := get(t, ip, port, "/mode?path="+url.QueryEscape(at+"/password")); m != "400" {
		t.Errorf("mode of a secret file = %s, want 400", m)
	}
	if err := writeFile(ip, port, at+"/password", "x"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("writing a secret file: %v, want a read-only file system error", err)
	}

	if err := vd.WriteFiles(context.Background(), uid, "creds", []runtime.File{{Path: "password", Data: []byte("two"), Mode: 0o400}}); err != nil {
		t.Fatalf("WriteFiles: %v", err)
	}
	eventually(t, "the new secret value in the running container", func() (bool, string) {
		got, err := readFile(t, ip, port, at+"/password")
		return err == nil && got == "two", got
	})
	eventually(t, "a key dropped from the secret gone from the volume", func() (bool, string) {
		got, err := readFile(t, ip, port, at+"/sub/user")
		return err != nil, got
	})
	if st := e.status(uid, "web"); st.PID != pid || st.State != runtime.StateRunning {
		t.Errorf("the container was restarted by a files update: %+v (pid before %d)", st, pid)
	}
}

// testReadOnly: a read-only mount refuses writes; the same claim mounted
// read-write in another container of the pod takes them, and the first
// reads them.
func (h *harness) testReadOnly(t *testing.T) {
	t.Parallel()
	e := h.newEnv(t)
	vd := h.volumeDriver(t, e)
	c := claimName(t)
	ro, rw := mountDir(t), mountDir(t)
	uid, ip := e.volPod(runtime.Volume{Name: "data", Claim: &runtime.ClaimVolume{Project: "default", Name: c}})
	_, port := e.serveMounting(uid, ip, "reader", runtime.Mount{Volume: "data", MountPath: ro, ReadOnly: true})
	_, port2 := e.serveMounting(uid, ip, "writer", runtime.Mount{Volume: "data", MountPath: rw})
	if err := writeFile(ip, port, ro+"/f", "x"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("writing through a readOnly mount: %v, want a read-only file system error", err)
	}
	if err := writeFile(ip, port2, rw+"/f", "written"); err != nil {
		t.Fatalf("writing through a read-write mount: %v", err)
	}
	mustRead(t, ip, port, ro+"/f", "written", "the reader, through its read-only mount")
	e.removeWithClaim(vd, uid, c, "reader", "writer")
}

// testSubPath: a mount of a subPath sees that directory of the volume
// only (made when missing); a driver that cannot says so at start.
func (h *harness) testSubPath(t *testing.T) {
	t.Parallel()
	e := h.newEnv(t)
	vd := h.volumeDriver(t, e)
	c := claimName(t)
	whole, sub := mountDir(t), mountDir(t)
	uid, ip := e.volPod(runtime.Volume{Name: "data", Claim: &runtime.ClaimVolume{Project: "default", Name: c}})
	_, port := e.serveMounting(uid, ip, "whole", runtime.Mount{Volume: "data", MountPath: whole})
	cfg := e.app("sub", ip, freePort(t, ip), nil)
	cfg.Mounts = []runtime.Mount{{Volume: "data", MountPath: sub, SubPath: "sub/dir"}}
	if _, err := e.d.StartContainer(context.Background(), uid, cfg); err != nil {
		if isErr(err, runtime.ErrInvalid) && strings.Contains(err.Error(), "subPath") {
			e.removeWithClaim(vd, uid, c, "whole")
			t.Skipf("subPath refused here, as documented: %v", err)
		}
		t.Fatalf("StartContainer with a subPath: %v", err)
	}
	port2 := cfg.Env[1][len("PORT="):]
	get(t, ip, port2, "/healthz")
	if err := writeFile(ip, port2, sub+"/f", "in the subPath"); err != nil {
		t.Fatalf("writing through a subPath mount: %v", err)
	}
	mustRead(t, ip, port, whole+"/sub/dir/f", "in the subPath", "the whole volume, where the subPath lies")
	e.removeWithClaim(vd, uid, c, "whole", "sub")
}
