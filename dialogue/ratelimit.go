package dialogue

import (
	"time"

	"github.com/bodybroker/sdk/internal/ratelimit"
)

// RateLimit is a per-player token bucket: Burst requests at once, refilled
// at Rate per second. The zero value means 2 per second with a burst of 10.
type RateLimit struct {
	Rate  float64
	Burst int
	// Disable turns rate limiting off.
	Disable bool
}

// limiter is the per-player bucket of a RateLimit over the SDK's shared
// keyed token bucket: it holds an entry only for players whose bucket is
// not full, so its memory follows the players active now.
type limiter struct {
	keyed *ratelimit.Keyed
	now   func() time.Time
}

func newLimiter(rl RateLimit, now func() time.Time) *limiter {
	if rl.Disable {
		return nil
	}
	if rl.Rate <= 0 {
		rl.Rate = 2
	}
	if rl.Burst <= 0 {
		rl.Burst = 10
	}
	every := time.Duration(float64(time.Second) / rl.Rate)
	return &limiter{keyed: ratelimit.NewKeyed(rl.Burst, max(every, 1)), now: now}
}

// allow takes a token from key's bucket and reports whether there was one.
// A nil limiter allows everything.
func (l *limiter) allow(key string) bool {
	if l == nil {
		return true
	}
	ok, _ := l.keyed.Take(key, l.now())
	return ok
}

// len returns the number of buckets held.
func (l *limiter) len() int { return l.keyed.Len() }
