package worldtime_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bodybroker/sdk/worldtime"
)

// Close on a manual clock waits for a Tick that is running callbacks, and
// no callback runs after Close returns — as Close documents.
func TestCloseWaitsForTick(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	c, err := worldtime.New(context.Background(), worldtime.Options{Manual: true,
		Now: func() time.Time { return *clock.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	inCallback, release := make(chan struct{}), make(chan struct{})
	var after atomic.Bool
	closed := make(chan struct{})
	if _, err := c.After(time.Minute, func(worldtime.Instant) {
		close(inCallback)
		<-release
		select {
		case <-closed:
			after.Store(true) // a callback still running after Close returned
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Hour)
	clock.Store(&later)
	ticked := make(chan error, 1)
	go func() { ticked <- c.Tick() }()
	<-inCallback
	go func() { _ = c.Close(); close(closed) }()
	select {
	case <-closed:
		// Close returned while the callback runs: it will run after Close.
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	<-ticked
	<-closed
	if after.Load() {
		t.Error("a timer callback ran after Close returned")
	}
}
