package worldtime_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/bodybroker/sdk/worldtime"
)

// A timeline decoded from a store (or anything else) either fails
// Validate or evaluates without panicking, and never to a negative game
// time.
func FuzzTimelineJSON(f *testing.F) {
	f.Add([]byte(`{"world":"w","version":3,"segments":[{"version":1,"kind":"start","real_epoch":"2026-11-30T08:00:00Z","game_epoch_us":25200000000,"from_us":25200000000,"scale":{"game":3600000000000,"real":60000000000}}]}`))
	f.Add([]byte(`{"segments":[{"real_epoch":"0001-01-01T00:00:00Z","game_epoch_us":9223372036854775807,"scale":{"game":86400000000000000,"real":1}}]}`))
	f.Add([]byte(`{"segments":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var tl worldtime.Timeline
		if json.Unmarshal(data, &tl) != nil || tl.Validate() != nil {
			return
		}
		for _, r := range []time.Time{{}, time.Unix(0, 0), time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC), time.Unix(1<<40, 0)} {
			if g := tl.GameAt(r); g < 0 {
				t.Fatalf("GameAt(%v) = %d < 0 for %s", r, g, data)
			}
		}
	})
}
