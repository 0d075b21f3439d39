package identity

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// sweepFloor is the map size below which idle limiters are not swept.
const sweepFloor = 1024

// limiters holds one token bucket per caller. A bucket that has filled up
// again is indistinguishable from a new one, so it is dropped on the next
// sweep; memory follows the number of recently active callers.
type limiters struct {
	limit rate.Limit
	burst int

	// mu guards the fields below.
	mu      sync.Mutex
	byKey   map[string]*rate.Limiter
	sweepAt int
}

func newLimiters(limit rate.Limit, burst int) *limiters {
	return &limiters{
		limit:   limit,
		burst:   burst,
		byKey:   make(map[string]*rate.Limiter),
		sweepAt: sweepFloor,
	}
}

// take spends one token of key's bucket at now. When the bucket is empty
// it returns false and how long until a token is available.
func (l *limiters) take(key string, now time.Time) (time.Duration, bool) {
	if l.limit == 0 {
		return 0, true
	}

	// The reservation is made under mu so that a sweep cannot drop a
	// bucket between lookup and use.
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.byKey[key]
	if !ok {
		l.sweep(now)
		lim = rate.NewLimiter(l.limit, l.burst)
		l.byKey[key] = lim
	}

	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return time.Minute, false
	}
	if wait := res.DelayFrom(now); wait > 0 {
		res.CancelAt(now)
		return wait, false
	}
	return 0, true
}

// sweep drops full buckets once the map has doubled since the last sweep.
// l.mu must be held.
func (l *limiters) sweep(now time.Time) {
	if len(l.byKey) < l.sweepAt {
		return
	}
	for k, lim := range l.byKey {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.byKey, k)
		}
	}
	l.sweepAt = max(sweepFloor, 2*len(l.byKey))
}

// size returns the number of buckets held.
func (l *limiters) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byKey)
}
