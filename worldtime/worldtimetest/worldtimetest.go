// Package worldtimetest checks that a worldtime.Store behaves as the
// worldtime package expects, the way testing/fstest checks an fs.FS. Run
// [TestStore] against every backend: the in-memory store, and Redis
// through worldtime/redisstore.
package worldtimetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bodybroker/sdk/worldtime"
	"github.com/google/go-cmp/cmp"
)

// TestStore runs the conformance suite. newStore returns an empty store
// (or one whose worlds no other test uses) for each subtest; stores it
// returns may share a backend, to check that several processes see one
// timeline.
func TestStore(t *testing.T, newStore func(t *testing.T) worldtime.Store) {
	ctx := context.Background()
	seg := func(v int64, kind worldtime.ChangeKind, real time.Time, game worldtime.Instant, paused bool) worldtime.Segment {
		return worldtime.Segment{Version: v, Kind: kind, RealEpoch: real.UTC(), GameEpoch: game, From: game,
			Scale: worldtime.Scale{Game: time.Hour, Real: time.Minute}, Paused: paused}
	}
	t0 := time.Date(2026, 11, 30, 8, 0, 0, 123456789, time.UTC)

	t.Run("LoadMissing", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Load(ctx, "nowhere"); !errors.Is(err, worldtime.ErrNotFound) {
			t.Fatalf("Load of a missing world: err = %v, want ErrNotFound", err)
		}
	})

	t.Run("CreateThenSwap", func(t *testing.T) {
		s := newStore(t)
		first := worldtime.Timeline{Segments: []worldtime.Segment{seg(1, worldtime.ChangeStart, t0, worldtime.At(1, 7, 0), false)}}
		got, err := s.Swap(ctx, "w", 0, first)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != 1 || got.World != "w" {
			t.Fatalf("first Swap: version %d world %q, want 1 %q", got.Version, got.World, "w")
		}
		if _, err := s.Swap(ctx, "w", 0, first); !errors.Is(err, worldtime.ErrConflict) {
			t.Fatalf("second create: err = %v, want ErrConflict", err)
		}
		next := first
		next.Segments = append(next.Segments, worldtime.Segment{
			Version: 2, Kind: worldtime.ChangeSkip, RealEpoch: t0.Add(time.Minute), GameEpoch: worldtime.At(2, 3, 0),
			From: worldtime.At(1, 8, 0), Scale: worldtime.Scale{Game: 7 * time.Hour, Real: 3 * time.Second}, Paused: true,
		})
		got, err = s.Swap(ctx, "w", 1, next)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != 2 {
			t.Fatalf("Swap from 1: version %d, want 2", got.Version)
		}
		loaded, err := s.Load(ctx, "w")
		if err != nil {
			t.Fatal(err)
		}
		next.Version, next.World = 2, "w"
		if diff := cmp.Diff(next, loaded); diff != "" {
			t.Fatalf("Load after Swap (-want +got):\n%s", diff)
		}
		// A stale version changes nothing.
		stale := first
		if _, err := s.Swap(ctx, "w", 1, stale); !errors.Is(err, worldtime.ErrConflict) {
			t.Fatalf("stale Swap: err = %v, want ErrConflict", err)
		}
		if again, _ := s.Load(ctx, "w"); again.Version != 2 || len(again.Segments) != 2 {
			t.Fatalf("stale Swap changed the timeline: %+v", again)
		}
	})

	t.Run("WorldsAreIndependent", func(t *testing.T) {
		s := newStore(t)
		for i, w := range []string{"day", "night", "shard:7"} {
			tl := worldtime.Timeline{Segments: []worldtime.Segment{seg(1, worldtime.ChangeStart, t0, worldtime.Instant(i), false)}}
			if _, err := s.Swap(ctx, w, 0, tl); err != nil {
				t.Fatalf("create %s: %v", w, err)
			}
		}
		for i, w := range []string{"day", "night", "shard:7"} {
			tl, err := s.Load(ctx, w)
			if err != nil || tl.Segments[0].GameEpoch != worldtime.Instant(i) {
				t.Fatalf("Load(%s) = %+v, %v; want game epoch %d", w, tl, err, i)
			}
		}
	})

	t.Run("ConcurrentSwapsOneWins", func(t *testing.T) {
		s := newStore(t)
		tl := worldtime.Timeline{Segments: []worldtime.Segment{seg(1, worldtime.ChangeStart, t0, 0, false)}}
		if _, err := s.Swap(ctx, "race", 0, tl); err != nil {
			t.Fatal(err)
		}
		const n = 16
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				next := tl
				next.Segments = append(next.Segments[:1:1], seg(2, worldtime.ChangePause, t0.Add(time.Second), worldtime.Instant(i), true))
				_, errs[i] = s.Swap(ctx, "race", 1, next)
			})
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, worldtime.ErrConflict):
				t.Errorf("concurrent Swap: %v, want nil or ErrConflict", err)
			}
		}
		if wins != 1 {
			t.Fatalf("%d concurrent swaps from one version succeeded, want 1", wins)
		}
		if got, _ := s.Load(ctx, "race"); got.Version != 2 {
			t.Fatalf("version after the race = %d, want 2", got.Version)
		}
	})

	t.Run("RejectsInvalidTimeline", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Swap(ctx, "bad", 0, worldtime.Timeline{}); !errors.Is(err, worldtime.ErrInvalid) {
			t.Fatalf("Swap of an empty timeline: err = %v, want ErrInvalid", err)
		}
		if _, err := s.Load(ctx, "bad"); !errors.Is(err, worldtime.ErrNotFound) {
			t.Fatalf("an invalid timeline was stored: %v", err)
		}
	})

	t.Run("Watch", func(t *testing.T) {
		s := newStore(t)
		w, ok := s.(worldtime.Watcher)
		if !ok {
			t.Skip("the store is not a worldtime.Watcher")
		}
		wctx, cancel := context.WithCancel(ctx)
		changed := make(chan struct{}, 16)
		done := make(chan error, 1)
		go func() { done <- w.Watch(wctx, "watched", func() { changed <- struct{}{} }) }()
		hang := time.NewTimer(30 * time.Second) // bounds a hang only
		defer hang.Stop()
		select { // subscribed
		case <-changed:
		case err := <-done:
			t.Fatalf("Watch returned early: %v", err)
		case <-hang.C:
			t.Fatal("Watch never reported its subscription")
		}
		tl := worldtime.Timeline{Segments: []worldtime.Segment{seg(1, worldtime.ChangeStart, t0, 0, false)}}
		if _, err := s.Swap(ctx, "watched", 0, tl); err != nil {
			t.Fatal(err)
		}
		select {
		case <-changed:
		case <-hang.C:
			t.Fatal("no notification after Swap")
		}
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Watch after cancel returned %v, want context.Canceled", err)
			}
		case <-hang.C:
			t.Fatal("Watch did not return after its context ended")
		}
	})

	t.Run("ClocksShareTime", func(t *testing.T) {
		s := newStore(t)
		// Two clocks, as on two servers, sharing the store.
		a, err := worldtime.New(ctx, worldtime.Options{Store: s, World: "shared", DisableRefresh: true})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		b, err := worldtime.New(ctx, worldtime.Options{Store: s, World: "shared", DisableRefresh: true})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if err := a.Skip(ctx, 5*time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Apply(ctx, worldtime.Change{Kind: worldtime.ChangeScale, Scale: worldtime.Scale{Game: time.Hour, Real: 7 * time.Second}, At: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := b.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		// Same real instants, same game times: before, at and after the
		// scheduled change.
		now := time.Now()
		for _, d := range []time.Duration{0, time.Minute, time.Hour, time.Hour + time.Nanosecond, 5 * time.Hour} {
			if ga, gb := a.At(now.Add(d)), b.At(now.Add(d)); ga != gb {
				t.Fatalf("at now+%v: clocks disagree: %v vs %v", d, ga, gb)
			}
		}
		if a.Timeline().Version != b.Timeline().Version {
			t.Fatalf("versions differ: %d vs %d", a.Timeline().Version, b.Timeline().Version)
		}
	})
}
