package validation_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/api/apitest"
	"slipway.dev/slipway/internal/api/validation"
)

func mode(m int32) *int32 { return &m }

func volCase(name string, mutate func(a *api.App), want ...string) validationCase {
	return validationCase{name, func() api.Object { return apitest.VolumeApp() }, func(o api.Object) { mutate(o.(*api.App)) }, want}
}

func claimCase(name string, mutate func(c *api.PersistentVolumeClaim), want ...string) validationCase {
	return validationCase{name, func() api.Object { return apitest.Claim() }, func(o api.Object) { mutate(o.(*api.PersistentVolumeClaim)) }, want}
}

var volumeCases = []validationCase{
	volCase("valid", func(a *api.App) {}),
	volCase("every volume problem at once", func(a *api.App) {
		t := &a.Spec.Template
		t.Volumes = append(t.Volumes,
			api.Volume{Name: "data", EmptyDir: &api.EmptyDirVolumeSource{}},
			api.Volume{Name: "none"},
			api.Volume{Name: "two", EmptyDir: &api.EmptyDirVolumeSource{}, Secret: &api.SecretVolumeSource{SecretName: "x"}},
			api.Volume{Name: "Bad", EmptyDir: &api.EmptyDirVolumeSource{Medium: "Disk", SizeLimit: "0"}},
			api.Volume{Name: "s", Secret: &api.SecretVolumeSource{SecretName: "db", DefaultMode: mode(0o1777),
				Items: []api.KeyToPath{{Key: "a", Path: "/etc/a"}, {Key: "b", Path: "x/../../b"}, {Key: "", Path: "c"}, {Key: "d", Path: "c"}}}},
			api.Volume{Name: "c", PersistentVolumeClaim: &api.PersistentVolumeClaimVolumeSource{}},
		)
	},
		`spec.template.volumes[4].name: Duplicate value: "data"`,
		`spec.template.volumes[5]: Required value: must specify a volume type: exactly one of emptyDir, persistentVolumeClaim, secret or configMap`,
		`spec.template.volumes[6]: Forbidden: may not specify more than 1 volume type`,
		`spec.template.volumes[7].name: Invalid value: "Bad": `+dns1123Msg,
		`spec.template.volumes[7].emptyDir.medium: Unsupported value: "Disk": supported values: "", "Memory"`,
		`spec.template.volumes[7].emptyDir.sizeLimit: Invalid value: "0": must be greater than zero`,
		`spec.template.volumes[8].secret.items[0].path: Invalid value: "/etc/a": must be a relative path`,
		`spec.template.volumes[8].secret.items[1].path: Invalid value: "x/../../b": must not contain '..'`,
		`spec.template.volumes[8].secret.items[2].key: Required value`,
		`spec.template.volumes[8].secret.items[3].path: Duplicate value: "c"`,
		`spec.template.volumes[8].secret.defaultMode: Invalid value: 1023: must be a number between 0 and 0777 (octal), both inclusive`,
		`spec.template.volumes[9].persistentVolumeClaim.claimName: Required value`,
	),
	volCase("every mount problem at once", func(a *api.App) {
		c := &a.Spec.Template.Containers[0]
		c.VolumeMounts = append(c.VolumeMounts,
			api.VolumeMount{Name: "cache", MountPath: "/cache"},
			api.VolumeMount{Name: "data", MountPath: "relative"},
			api.VolumeMount{Name: "data", MountPath: "/var/lib/data/"},
			api.VolumeMount{Name: "data", MountPath: "/"},
			api.VolumeMount{Name: "data", MountPath: "/a/../b"},
			api.VolumeMount{Name: "data", MountPath: "/x", SubPath: "/abs"},
			api.VolumeMount{Name: "data", MountPath: "/y", SubPath: "a/../../etc"},
			api.VolumeMount{MountPath: ""},
		)
	},
		`spec.template.containers[0].volumeMounts[4].name: Not found: "cache": no volume of the pod has this name (declare it in volumes)`,
		`spec.template.containers[0].volumeMounts[5].mountPath: Invalid value: "relative": must be an absolute path`,
		`spec.template.containers[0].volumeMounts[6].mountPath: Invalid value: "/var/lib/data/": must be unique`,
		`spec.template.containers[0].volumeMounts[7].mountPath: Invalid value: "/": must not be the root directory`,
		`spec.template.containers[0].volumeMounts[8].mountPath: Invalid value: "/a/../b": must not contain '..'`,
		`spec.template.containers[0].volumeMounts[9].subPath: Invalid value: "/abs": must be a relative path`,
		`spec.template.containers[0].volumeMounts[10].subPath: Invalid value: "a/../../etc": must not contain '..'`,
		`spec.template.containers[0].volumeMounts[11].name: Required value`,
		`spec.template.containers[0].volumeMounts[11].mountPath: Required value`,
	),
	{"pod mounts an undeclared volume", func() api.Object {
		return &api.Pod{Metadata: api.ObjectMeta{Name: "p"}, Spec: api.PodSpec{
			Containers: []api.Container{{Name: "web", Command: []string{"x"}, VolumeMounts: []api.VolumeMount{{Name: "data", MountPath: "/data"}}}}}}
	}, nil, []string{
		`spec.containers[0].volumeMounts[0].name: Not found: "data": no volume of the pod has this name (declare it in volumes)`,
	}},
	claimCase("valid claim", func(c *api.PersistentVolumeClaim) {}),
	claimCase("every claim problem at once", func(c *api.PersistentVolumeClaim) {
		c.Spec.AccessModes = []string{"ReadWriteOncePod", "ReadWriteOnce", "ReadWriteOnce", "Shared"}
		c.Spec.Resources.Requests = api.ResourceList{"cpu": "1"}
	},
		`spec.accessModes[2]: Duplicate value: "ReadWriteOnce"`,
		`spec.accessModes[3]: Unsupported value: "Shared": supported values: "ReadWriteOnce", "ReadWriteOncePod", "ReadOnlyMany", "ReadWriteMany"`,
		`spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes`,
		`spec.resources.requests["storage"]: Required value`,
		`spec.resources.requests["cpu"]: Unsupported value: "cpu": supported values: "storage"`,
	),
	claimCase("claim without modes and a bad size", func(c *api.PersistentVolumeClaim) {
		c.Spec.AccessModes = nil
		c.Spec.Resources.Requests = api.ResourceList{"storage": "lots"}
	},
		`spec.accessModes: Required value: at least 1 access mode is required`,
		`spec.resources.requests["storage"]: Invalid value: "lots": must be a quantity such as 500m, 0.5, 2, 256Mi or 1G`,
	),
	{"configmap keys", func() api.Object {
		return &api.ConfigMap{Metadata: api.ObjectMeta{Name: "web"}, Data: map[string]string{"app.conf": "x=1", "bad key": "v"}}
	}, nil, []string{
		`data["bad key"]: Invalid value: "bad key": key: a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name' or 'KEY_NAME' or 'key-name')`,
	}},
}

const dns1123Msg = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name' or '123-abc')"

func TestValidateVolumes(t *testing.T) { runValidationCases(t, volumeCases) }

func TestValidateUpdateClaim(t *testing.T) {
	old := apitest.Claim()
	api.SetDefaults(old)
	n := apitest.Claim()
	api.SetDefaults(n)
	n.Spec.AccessModes = []string{api.ReadWriteMany}
	n.Spec.Resources.Requests["storage"] = "512Mi"
	want := []string{
		`spec.accessModes: Forbidden: field is immutable after creation`,
		`spec.resources.requests["storage"]: Forbidden: may not be less than the previous value 1Gi: a claim may grow, never shrink`,
	}
	if diff := cmp.Diff(want, messages(validation.ValidateUpdate(old, n))); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	n = apitest.Claim()
	api.SetDefaults(n)
	n.Spec.Resources.Requests["storage"] = "2Gi"
	if errs := validation.ValidateUpdate(old, n); len(errs) != 0 {
		t.Errorf("growing a claim: %v", errs)
	}
}

func TestValidateClaimUse(t *testing.T) {
	rwop := apitest.Claim()
	rwop.Spec.AccessModes = []string{api.ReadWriteOncePod}
	rwx := apitest.Claim()
	rwx.Spec.AccessModes = []string{api.ReadWriteMany}
	msg := func(typ string) string {
		return `spec.strategy.type: Invalid value: "` + typ + `": the pods mount the ReadWriteOncePod claim "db-data" read-write, which one pod at a time may write: a ` + typ +
			` rollout starts a new pod before the old one stops, and the new pod would wait for the claim forever; use strategy Recreate (the old pod stops, then the new one mounts the claim), or a ReadWriteMany claim`
	}
	for _, tc := range []struct {
		name     string
		strategy string
		claim    *api.PersistentVolumeClaim
		readOnly bool
		want     []string
	}{
		{"Recreate with ReadWriteOncePod", api.StrategyRecreate, rwop, false, nil},
		{"Rolling with ReadWriteOncePod", api.StrategyRolling, rwop, false, []string{msg("Rolling")}},
		{"Canary with ReadWriteOncePod", api.StrategyCanary, rwop, false, []string{msg("Canary")}},
		{"BlueGreen with ReadWriteOncePod", api.StrategyBlueGreen, rwop, false, []string{msg("BlueGreen")}},
		{"Rolling with ReadWriteOncePod read-only", api.StrategyRolling, rwop, true, nil},
		{"Rolling with ReadWriteMany", api.StrategyRolling, rwx, false, nil},
		{"Rolling with a claim not created yet", api.StrategyRolling, nil, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := apitest.VolumeApp()
			a.Spec.Strategy = api.Strategy{Type: tc.strategy}
			a.Spec.Template.Containers[0].VolumeMounts[0].ReadOnly = tc.readOnly
			claims := map[string]*api.PersistentVolumeClaim{}
			if tc.claim != nil {
				claims["db-data"] = tc.claim
			}
			if diff := cmp.Diff(tc.want, messages(validation.ValidateClaimUse(a, claims)), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}
