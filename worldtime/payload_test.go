package worldtime_test

import (
	"context"
	"encoding/json"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/worldtime"
)

// A client evaluating the payload (after a JSON round trip) agrees with
// the server's clock to within a game millisecond, across a scheduled
// scale change and a pause.
func TestPayloadMatchesClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		c := newClock(t, worldtime.Options{})
		time.Sleep(17 * time.Second)
		now := time.Now()
		if _, err := c.Apply(ctx, worldtime.Change{Kind: worldtime.ChangeScale, Scale: worldtime.Scale{Game: 7 * time.Hour, Real: 13 * time.Second}, At: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Apply(ctx, worldtime.Change{Kind: worldtime.ChangePause, At: now.Add(3 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(c.Payload())
		if err != nil {
			t.Fatal(err)
		}
		var p worldtime.Payload
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		if p.V != 1 || len(p.Segments) != 3 || len(p.Phases) != 4 || p.Segments[0].RealSecondsPerGameHour != 60 {
			t.Fatalf("payload = %s", b)
		}
		for _, d := range []time.Duration{0, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute} {
			want := float64(c.At(now.Add(d)).Instant)
			if got := p.GameAt(now.Add(d)); math.Abs(got-want) > 1000 {
				t.Errorf("at now+%v: client computes %.0f µs, server %.0f", d, got, want)
			}
		}
	})
}
