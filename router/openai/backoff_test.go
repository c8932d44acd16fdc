package openai_test

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/openai"
)

// TestManyRetriesBackOffWithinBounds: a request that is refused again and
// again is retried MaxRetries times, each wait jittered and capped at a
// second, however many retries are allowed. The waits used to be computed
// as RetryBackoff<<try, which overflowed past about 39 retries and made
// the jitter panic. Runs on a fake clock, so a minute of waiting is instant.
func TestManyRetriesBackOffWithinBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var dials atomic.Int64
		refuse := &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) {
			dials.Add(1)
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		}}}
		const retries = 64
		m, err := openai.New(openai.Options{BaseURL: "http://model.invalid/v1", HTTPClient: refuse,
			RetryBackoff: 25 * time.Millisecond, MaxRetries: retries})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		start := time.Now()
		if _, err := m.Stream(context.Background(), router.Request{}); err == nil {
			t.Fatal("every dial refused, yet Stream succeeded")
		}
		if got, want := dials.Load(), int64(retries+1); got != want {
			t.Errorf("%d dials, want %d (one try and %d retries)", got, want, retries)
		}
		// Each wait is at most a second, and the waits are jittered, so
		// they cannot all be a second.
		if waited := time.Since(start); waited <= 0 || waited >= retries*time.Second {
			t.Errorf("waited %v over %d retries, want more than 0 and under %v", waited, retries, retries*time.Second)
		}
	})
}
