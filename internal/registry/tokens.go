package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/store"
)

// Roles a token grants.
const (
	// RoleAdmin may read and write everything.
	RoleAdmin = "admin"
	// RoleView may only read.
	RoleView = "view"
)

// AdminTokenName names the token made on first start.
const AdminTokenName = "admin"

// tokenSchemaVersion is the version of tokenRecord; a record of another
// version is ignored rather than misread.
const tokenSchemaVersion = 1

const tokenKeys = keyRoot + "internal/tokens/"

// tokenRecord is what is stored of a token: never the token itself.
type tokenRecord struct {
	SchemaVersion int       `json:"schemaVersion"`
	Name          string    `json:"name"`
	Role          string    `json:"role"`
	SHA256        string    `json:"sha256"` // hex of the token's SHA-256
	CreatedAt     time.Time `json:"createdAt"`
}

// Principal is who a token authenticates.
type Principal struct {
	Name string
	Role string
}

// CanWrite reports whether the principal may change objects.
func (p Principal) CanWrite() bool { return p.Role == RoleAdmin }

// EnsureAdminToken creates the admin token if there is none, or, with
// replace, replaces it whatever it was (the composition root asks for that
// when the token file was lost, so the local admin is never locked out).
// The token is returned only when created: afterwards only its hash exists.
func (r *Registry) EnsureAdminToken(ctx context.Context, replace bool) (token string, created bool, err error) {
	if replace {
		token, err = r.putToken(ctx, AdminTokenName, RoleAdmin, true)
	} else {
		token, err = r.putToken(ctx, AdminTokenName, RoleAdmin, false)
		if api.IsAlreadyExists(err) {
			return "", false, nil
		}
	}
	if err != nil {
		return "", false, err
	}
	return token, true, nil
}

// CreateToken makes a new random token with the given name and role and
// stores its hash. It returns AlreadyExists if the name is taken.
func (r *Registry) CreateToken(ctx context.Context, name, role string) (string, error) {
	return r.putToken(ctx, name, role, false)
}

// RotateToken replaces the token of the given name (or creates it) with a
// new random one; the old one stops working at once.
func (r *Registry) RotateToken(ctx context.Context, name, role string) (string, error) {
	return r.putToken(ctx, name, role, true)
}

func (r *Registry) putToken(ctx context.Context, name, role string, replace bool) (string, error) {
	if err := checkSegment("token name", name); err != nil {
		return "", err
	}
	if role != RoleAdmin && role != RoleView {
		return "", api.Errorf(api.ReasonBadRequest, "unsupported role %q: must be %s or %s", role, RoleAdmin, RoleView)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	token := "slw_" + base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(token))
	rec := tokenRecord{SchemaVersion: tokenSchemaVersion, Name: name, Role: role,
		SHA256: hex.EncodeToString(sum[:]), CreatedAt: r.now().UTC()}
	v, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	k := tokenKeys + name
	for {
		_, err = r.st.Create(ctx, k, v)
		if !replace || !errors.Is(err, store.ErrExists) {
			break
		}
		var kv store.KeyValue
		if kv, err = r.st.Get(ctx, k); errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			break
		}
		if _, err = r.st.Update(ctx, k, v, kv.ModRevision); !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
			break
		}
	}
	if errors.Is(err, store.ErrExists) {
		return "", api.Errorf(api.ReasonAlreadyExists, "token %q already exists", name)
	}
	if err != nil {
		return "", fmt.Errorf("store token %q: %w", name, err)
	}
	r.log.Info("stored token", "name", name, "role", role, "replaced", replace)
	return token, nil
}

// DeleteToken revokes a token by name.
func (r *Registry) DeleteToken(ctx context.Context, name string) error {
	if err := checkSegment("token name", name); err != nil {
		return err
	}
	if _, _, err := r.st.Delete(ctx, tokenKeys+name, 0); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return api.Errorf(api.ReasonNotFound, "token %q not found", name)
		}
		return fmt.Errorf("delete token %q: %w", name, err)
	}
	r.log.Info("deleted token", "name", name)
	return nil
}

// Authenticate returns the principal of a bearer token, or an Unauthorized
// error that does not say why (no hint for someone guessing). Every stored
// hash is compared in constant time, whichever matches.
func (r *Registry) Authenticate(ctx context.Context, token string) (Principal, error) {
	denied := api.Errorf(api.ReasonUnauthorized, "invalid or missing bearer token")
	if token == "" {
		return Principal{}, denied
	}
	sum := sha256.Sum256([]byte(token))
	res, err := r.st.List(ctx, tokenKeys, store.ListOptions{})
	if err != nil {
		return Principal{}, fmt.Errorf("read tokens: %w", err)
	}
	var found *tokenRecord
	for _, kv := range res.KVs {
		var rec tokenRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil || rec.SchemaVersion != tokenSchemaVersion {
			r.log.Warn("ignoring unreadable token record", "key", kv.Key, "schemaVersion", rec.SchemaVersion)
			continue
		}
		want, err := hex.DecodeString(rec.SHA256)
		if err != nil {
			continue
		}
		if subtle.ConstantTimeCompare(want, sum[:]) == 1 && found == nil {
			found = &rec
		}
	}
	if found == nil {
		return Principal{}, denied
	}
	return Principal{Name: found.Name, Role: found.Role}, nil
}
