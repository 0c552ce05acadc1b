package view

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
)

func TestClaimColumnsAndDescribe(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	used := int64(3 << 20)
	del := now.Add(-time.Minute)
	c := &api.PersistentVolumeClaim{
		TypeMeta: api.TypeMeta{Kind: "PersistentVolumeClaim"},
		Metadata: api.ObjectMeta{Name: "db-data", Project: "default", CreationTimestamp: now.Add(-time.Hour), DeletionTimestamp: &del},
		Spec: api.PersistentVolumeClaimSpec{AccessModes: []string{api.ReadWriteOncePod},
			Resources: api.VolumeResourceRequirements{Requests: api.ResourceList{"storage": "1Gi"}}},
		Status: api.PersistentVolumeClaimStatus{Phase: api.ClaimBound, Capacity: api.ResourceList{"storage": "1Gi"},
			Used: &used, MeasuredAt: now, MountedBy: []string{"db-1-abcde"}},
	}
	h, r := columns(c, false, now)
	want := [][]string{{"NAME", "STATUS", "CAPACITY", "USED", "ACCESS MODES", "MOUNTED BY", "AGE"},
		{"db-data", "Terminating", "1Gi", "3Mi", "RWOP", "db-1-abcde", "60m"}}
	if diff := cmp.Diff(want, [][]string{h, r}); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
	var b bytes.Buffer
	Describe(&b, c, nil, Metrics{}, now)
	for _, s := range []string{"Status:", "Terminating", "Access Modes:", "ReadWriteOncePod", "Capacity:", "1Gi", "3Mi (3145728 bytes", "Mounted By:", "db-1-abcde", "once no pod mounts it"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("describe pvc lacks %q:\n%s", s, b.String())
		}
	}
}

func TestConfigMapColumns(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cm := &api.ConfigMap{Metadata: api.ObjectMeta{Name: "web", CreationTimestamp: now.Add(-2 * time.Minute)}, Data: map[string]string{"a": "1", "b": "2"}}
	h, r := columns(cm, false, now)
	if diff := cmp.Diff([][]string{{"NAME", "DATA", "AGE"}, {"web", "2", "2m"}}, [][]string{h, r}); diff != "" {
		t.Errorf("columns (-want +got):\n%s", diff)
	}
}
