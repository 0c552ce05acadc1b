package server

import (
	"log/slog"

	"slipway.dev/slipway/internal/console"
	"slipway.dev/slipway/internal/router"
	"slipway.dev/slipway/internal/telemetry"
)

// newConsole makes the web console and the in-process time series of the
// router's counters behind its charts (run it: Series.Run). The API
// serves the console under /console/ and the console calls the API's
// handler, so the caller sets that with SetAPI once the API is made.
func newConsole(rt *router.Router, log *slog.Logger) (*console.Console, *telemetry.Series) {
	series := telemetry.NewSeries(rt)
	return console.New(console.Options{Series: series, Logger: log.With("component", "console")}), series
}
