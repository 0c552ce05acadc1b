package router

import (
	"context"
	"net"
	"testing"
	"time"
)

// serveFastEngine serves r with a Server on the fast engine.
func serveFastEngine(t *testing.T, r *Router, ln net.Listener) string {
	t.Helper()
	s := NewServer(r, ServerOptions{Engine: EngineFast})
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

// useEngine makes the servers the test starts use engine.
func useEngine(t *testing.T, engine string) {
	prev := testEngine
	testEngine = engine
	t.Cleanup(func() { testEngine = prev })
}

// TestFastEngine runs the router's and the frontend's tests again on the
// fast engine: every behaviour they check of the standard engine holds
// there too.
func TestFastEngine(t *testing.T) {
	for _, tc := range []struct {
		name string
		test func(*testing.T)
	}{
		{"UnknownHostIs404AndNoEndpointIs503", TestUnknownHostIs404AndNoEndpointIs503},
		{"ForwardedHeadersAndHopByHop", TestForwardedHeadersAndHopByHop},
		{"RouterSplitAndStickinessOverHTTP", TestRouterSplitAndStickinessOverHTTP},
		{"RetryOnRefusedEndpoint", TestRetryOnRefusedEndpoint},
		{"ResponseTimeoutIs504", TestResponseTimeoutIs504},
		{"WaitDrainedWaitsForInFlightRequest", TestWaitDrainedWaitsForInFlightRequest},
		{"MaxBodyBytes", TestMaxBodyBytes},
		{"NoRetryOnceANonIdempotentRequestReachedTheUpstream", TestNoRetryOnceANonIdempotentRequestReachedTheUpstream},
		{"BadRequestCorpus", TestBadRequestCorpus},
		{"GoodFramingPasses", TestGoodFramingPasses},
		{"StreamedBodyOverLimit", TestStreamedBodyOverLimit},
		{"SlowHeaderIsCutOff", TestSlowHeaderIsCutOff},
		{"SlowBodyIsCutOff", TestSlowBodyIsCutOff},
		{"ShutdownIsGraceful", TestShutdownIsGraceful},
		{"ShutdownDeadline", TestShutdownDeadline},
		{"RefusalAfterOptionsStar", TestRefusalAfterOptionsStar},
		{"NoFailedRequestUnderChurn", TestNoFailedRequestUnderChurn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			useEngine(t, EngineFast)
			tc.test(t)
		})
	}
}
