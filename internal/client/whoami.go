package client

import (
	"context"
	"net/http"
)

// WhoAmI is who the API takes the caller for, and what it may do.
type WhoAmI struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	Write bool   `json:"write"`
}

// WhoAmI asks the API who the token belongs to (GET /api/v1/whoami); an
// invalid token is an Unauthorized *api.Error.
func (c *Client) WhoAmI(ctx context.Context) (WhoAmI, error) {
	var w WhoAmI
	err := c.do(ctx, http.MethodGet, "/api/v1/whoami", nil, nil, &w)
	return w, err
}
