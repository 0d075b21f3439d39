package policy

// Plain and RoundTrip expose the input conversion to the external tests,
// which compare it with encoding/json on the guard's real facts.
var (
	Plain     = plain
	RoundTrip = roundTrip
)
