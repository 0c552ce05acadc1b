package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"

	"slipway.dev/slipway/internal/api"
)

// RevisionHash identifies what a revision runs: the template, and the
// content of the Secrets it references when it references any (so a
// changed Secret rolls out a new revision). Without Secrets it is
// TemplateHash, so revisions made before Secrets counted keep theirs.
func RevisionHash(t api.PodTemplate, secretHash string) string {
	h := TemplateHash(t)
	if secretHash == "" {
		return h
	}
	sum := sha256.Sum256([]byte(h + "/" + secretHash))
	return hex.EncodeToString(sum[:])[:16]
}

// SecretRefs lists the Secrets (by name) and keys a template reads.
func SecretRefs(t api.PodTemplate) map[string][]string {
	out := map[string][]string{}
	for _, c := range t.Containers {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				r := e.ValueFrom.SecretKeyRef
				if !slices.Contains(out[r.Name], r.Key) {
					out[r.Name] = append(out[r.Name], r.Key)
				}
			}
		}
	}
	return out
}

// SecretHash digests the values of the referenced keys (data maps secret
// name to its data; a missing Secret or key digests as absent). Values
// never leave this function but as part of a SHA-256.
func SecretHash(refs map[string][]string, data map[string]map[string]string) string {
	if len(refs) == 0 {
		return ""
	}
	h := sha256.New()
	names := make([]string, 0, len(refs))
	for n := range refs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		keys := slices.Sorted(slices.Values(refs[n]))
		for _, k := range keys {
			v, ok := data[n][k]
			fmt.Fprintf(h, "%d:%s/%d:%s=%t:%d:%s;", len(n), n, len(k), k, ok, len(v), v)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
