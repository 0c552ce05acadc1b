package apply

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/client"
)

// deletedMessage is what `delete` says of a deleted object: a claim that
// pods still mount is only marked, and says so.
func deletedMessage(ctx context.Context, c *client.Client, info api.KindInfo, project, name string) string {
	done := fmt.Sprintf("%s/%s deleted", strings.ToLower(info.Kind), name)
	if info.Kind != "PersistentVolumeClaim" {
		return done
	}
	o, err := c.Get(ctx, info, project, name)
	if err != nil {
		return done
	}
	pvc := o.(*api.PersistentVolumeClaim)
	if pvc.Metadata.DeletionTimestamp == nil {
		return done
	}
	return fmt.Sprintf("%s/%s is Terminating: in use by pod %s; it is deleted, with its data, once no pod mounts it",
		strings.ToLower(info.Kind), name, cmp.Or(strings.Join(pvc.Status.MountedBy, ", pod "), "<none>"))
}
