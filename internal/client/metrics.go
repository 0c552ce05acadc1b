package client

import (
	"context"
	"io"
)

// MaxMetricsBytes caps the /metrics text read: a router with thousands of
// routes writes a few megabytes.
const MaxMetricsBytes = 64 << 20

// Metrics returns the platform's metrics in Prometheus' text format (GET
// /metrics): the router's counters by route, service and revision.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	resp, err := c.send(ctx, "GET", "/metrics", nil, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxMetricsBytes))
	return string(b), err
}
