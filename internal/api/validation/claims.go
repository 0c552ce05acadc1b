package validation

import (
	"fmt"

	"slipway.dev/slipway/internal/api"
)

// ValidateClaimUse checks an App against the claims its template mounts
// (claims maps a name to the claim, nil when it does not exist yet): a
// ReadWriteOncePod claim mounted read-write takes the Recreate strategy.
// Rolling, BlueGreen and Canary start the new revision's pods while the
// old ones still run; the new pod could never mount the claim the old one
// holds, and the rollout would wait for it until its deadline (Kubernetes'
// Multi-Attach deadlock).
func ValidateClaimUse(app *api.App, claims map[string]*api.PersistentVolumeClaim) api.FieldErrors {
	v := &validator{}
	typ := app.Spec.Strategy.Type
	if typ == "" {
		typ = api.StrategyRolling
	}
	if typ == api.StrategyRecreate {
		return nil
	}
	for _, name := range api.ClaimNames(app.Spec.Template.Volumes) {
		c := claims[name]
		if c == nil || !c.Spec.HasMode(api.ReadWriteOncePod) || !api.WritesClaim(&app.Spec.Template, name) {
			continue
		}
		v.invalid("spec.strategy.type", typ, fmt.Sprintf(
			"the pods mount the ReadWriteOncePod claim %q read-write, which one pod at a time may write: a %s rollout starts a new pod before the old one stops, and the new pod would wait for the claim forever; use strategy Recreate (the old pod stops, then the new one mounts the claim), or a ReadWriteMany claim", name, typ))
	}
	return v.errs
}
