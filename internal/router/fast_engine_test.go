package router_test

import (
	"context"
	"net"
	"testing"
	"time"

	"slipway.dev/slipway/internal/router"
	"slipway.dev/slipway/internal/router/fast"
	"slipway.dev/slipway/internal/router/std"
)

// serveFastEngine serves r with a Server on the fast engine.
func serveFastEngine(t *testing.T, r *router.Router, ln net.Listener) string {
	t.Helper()
	s := fast.NewServer(std.NewServer(r, std.ServerOptions{}), fast.Options{Engine: fast.EngineFast})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// TestFastEngine runs again on the fast engine every test of the package
// that serves through serveRouter or serveFrontend: each behaviour they
// check of the standard engine holds there too (served by the fast
// engine, or by the standard one behind it where the fast engine hands
// off). A new such test belongs in this list. Left out:
// TestNoRetryOnceANonIdempotentRequestReachedTheUpstream is about the bare
// Router, whose POST bodies are not buffered; behind a Server (either
// engine) the frontend buffers them, which makes them replayable, so
// they are sent again once (TestRetryOnAPooledConnectionTheEndpointDropped
// and TestFastEngineReplaysBufferedPost hold that).
func TestFastEngine(t *testing.T) {
	// Set for all subtests at once and restored once the last has ended:
	// some call t.Parallel and run after this loop.
	testEngine = fast.EngineFast
	t.Cleanup(func() { testEngine = fast.EngineStd })
	for _, tc := range []struct {
		name string
		test func(*testing.T)
	}{
		{"AccessLog", TestAccessLog},
		{"BadRequestCorpus", TestBadRequestCorpus},
		{"ForwardedHeadersAndHopByHop", TestForwardedHeadersAndHopByHop},
		{"GoingAwayClosesWebSockets", TestGoingAwayClosesWebSockets},
		{"GoodFramingPasses", TestGoodFramingPasses},
		{"MaxBodyBytes", TestMaxBodyBytes},
		{"Mirror", TestMirror},
		{"MirrorPercent", TestMirrorPercent},
		{"NoFailedRequestUnderChurn", TestNoFailedRequestUnderChurn},
		{"ObservedSplitOverHTTP", TestObservedSplitOverHTTP},
		{"PassiveHealthUnderLoad", TestPassiveHealthUnderLoad},
		{"RefusalAfterOptionsStar", TestRefusalAfterOptionsStar},
		{"ResponseTimeoutIs504", TestResponseTimeoutIs504},
		{"RetriesOnStatus", TestRetriesOnStatus},
		{"RetryOnRefusedEndpoint", TestRetryOnRefusedEndpoint},
		{"RouterSplitAndStickinessOverHTTP", TestRouterSplitAndStickinessOverHTTP},
		{"ShutdownDeadline", TestShutdownDeadline},
		{"ShutdownIsGraceful", TestShutdownIsGraceful},
		{"SlowBodyIsCutOff", TestSlowBodyIsCutOff},
		{"SlowHeaderIsCutOff", TestSlowHeaderIsCutOff},
		{"StatsPerRouteRevisionAndEndpoint", TestStatsPerRouteRevisionAndEndpoint},
		{"StreamedBodyOverLimit", TestStreamedBodyOverLimit},
		{"StreamedResponsePassesUnbufferedAndEndsCleanlyOnDrain", TestStreamedResponsePassesUnbufferedAndEndsCleanlyOnDrain},
		{"UnknownHostIs404AndNoEndpointIs503", TestUnknownHostIs404AndNoEndpointIs503},
		{"UpgradeRules", TestUpgradeRules},
		{"WaitDrainedWaitsForInFlightRequest", TestWaitDrainedWaitsForInFlightRequest},
		{"WebSocketSurvivesChangesAndDrainsWith1001", TestWebSocketSurvivesChangesAndDrainsWith1001},
	} {
		t.Run(tc.name, tc.test)
	}
}
