package registry_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/registry"
)

func newClaim(name string, modes ...string) *api.PersistentVolumeClaim {
	return &api.PersistentVolumeClaim{Metadata: api.ObjectMeta{Name: name}, Spec: api.PersistentVolumeClaimSpec{
		AccessModes: modes, Resources: api.VolumeResourceRequirements{Requests: api.ResourceList{"storage": "1Gi"}}}}
}

func claimApp(name, claim string, strategy string) *api.App {
	a := newApp("default", name)
	a.Spec.Strategy.Type = strategy
	a.Spec.Template.Volumes = []api.Volume{{Name: "data", PersistentVolumeClaim: &api.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}
	a.Spec.Template.Containers[0].VolumeMounts = []api.VolumeMount{{Name: "data", MountPath: "/data"}}
	return a
}

func TestAdmitReadWriteOncePod(t *testing.T) {
	e := newEnv(t, registry.Options{})
	e.mustCreate(t, newClaim("db", api.ReadWriteOncePod))
	_, err := e.reg.Create(e.ctx, claimApp("web", "db", api.StrategyRolling))
	if !api.IsInvalid(err) || !strings.Contains(err.Error(), "use strategy Recreate") {
		t.Fatalf("a Rolling App writing a ReadWriteOncePod claim: %v, want Invalid saying to use Recreate", err)
	}
	app := e.mustCreate(t, claimApp("web", "db", api.StrategyRecreate)).(*api.App)
	app.Spec.Strategy = api.Strategy{Type: api.StrategyCanary}
	if _, err := e.reg.Update(e.ctx, app); !api.IsInvalid(err) {
		t.Errorf("updating it to Canary: %v, want Invalid", err)
	}

	// In one apply, the claim counts before it is written, and nothing is.
	_, err = e.reg.ApplyList(e.ctx, []api.Object{newClaim("db2", api.ReadWriteOncePod), claimApp("web2", "db2", api.StrategyBlueGreen)}, registry.ApplyOptions{})
	if !api.IsInvalid(err) || !strings.Contains(err.Error(), "items[1]") {
		t.Fatalf("apply of a claim and a BlueGreen App writing it: %v, want Invalid naming items[1]", err)
	}
	if _, err := e.reg.Get(e.ctx, kind("PersistentVolumeClaim"), "default", "db2"); !api.IsNotFound(err) {
		t.Errorf("the claim of a refused apply was written: %v", err)
	}
	// A ReadWriteMany claim suits any strategy.
	if _, err := e.reg.ApplyList(e.ctx, []api.Object{newClaim("shared", api.ReadWriteMany), claimApp("web3", "shared", api.StrategyRolling)}, registry.ApplyOptions{}); err != nil {
		t.Errorf("a Rolling App on a ReadWriteMany claim: %v", err)
	}
}

func TestDeleteClaimInUse(t *testing.T) {
	e := newEnv(t, registry.Options{})
	e.mustCreate(t, newClaim("db", api.ReadWriteOnce))
	pod := &api.Pod{Metadata: api.ObjectMeta{Name: "web-1-abcde"}, Spec: api.PodSpec{
		Containers: []api.Container{{Name: "web", Command: []string{"x"}, VolumeMounts: []api.VolumeMount{{Name: "data", MountPath: "/data"}}}},
		Volumes:    []api.Volume{{Name: "data", PersistentVolumeClaim: &api.PersistentVolumeClaimVolumeSource{ClaimName: "db"}}},
	}}
	e.mustCreate(t, pod)
	pvcKind := kind("PersistentVolumeClaim")
	for range 2 { // a second delete changes nothing
		o, err := e.reg.Delete(e.ctx, pvcKind, "default", "db", registry.DeleteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c := o.(*api.PersistentVolumeClaim)
		if c.Metadata.DeletionTimestamp == nil || !cmp.Equal(c.Status.MountedBy, []string{"web-1-abcde"}) {
			t.Fatalf("deleting a claim in use returned %+v, want it marked for deletion and naming its pod", c.Metadata)
		}
	}
	if _, err := e.reg.Get(e.ctx, pvcKind, "default", "db"); err != nil {
		t.Fatalf("a claim in use is gone at once: %v", err)
	}
	if _, err := e.reg.Delete(e.ctx, kind("Pod"), "default", "web-1-abcde", registry.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Delete(e.ctx, pvcKind, "default", "db", registry.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Get(e.ctx, pvcKind, "default", "db"); !api.IsNotFound(err) {
		t.Errorf("a claim no pod mounts survived its deletion: %v", err)
	}
	// Deleting an App never deletes its claims.
	e.mustCreate(t, newClaim("keep", api.ReadWriteOnce))
	e.mustCreate(t, claimApp("web", "keep", api.StrategyRecreate))
	if _, err := e.reg.Delete(e.ctx, kind("App"), "default", "web", registry.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Get(e.ctx, pvcKind, "default", "keep"); err != nil {
		t.Errorf("deleting an App deleted its claim: %v", err)
	}
}
