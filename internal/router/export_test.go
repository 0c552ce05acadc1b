package router

// The package's own test helpers and a look inside, for the tests of the
// engines (package router_test), which serve through std and fast.
var (
	OneBackend = oneBackend
	MustBuild  = mustBuild
	AP         = ap
	ABRoute    = abRoute
)

// MirrorsInFlight is the number of mirror slots r has taken.
func MirrorsInFlight(r *Router) int { return len(r.mirrorSlots) }
