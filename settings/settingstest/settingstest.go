// Package settingstest is the conformance suite for settings.Store
// implementations: TestStore runs the same checks against the in-memory,
// file and Redis stores, and against a studio's own.
package settingstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/bodybroker/sdk/settings"
)

// TestStore runs the conformance suite. newStore returns an empty store
// for one subtest; the store must keep players apart and may be shared
// with nothing else.
func TestStore(t *testing.T, newStore func(t *testing.T) settings.Store) {
	t.Run("EmptyLoad", func(t *testing.T) { testEmptyLoad(t, newStore(t)) })
	t.Run("ApplyAndLoad", func(t *testing.T) { testApplyAndLoad(t, newStore(t)) })
	t.Run("Conflict", func(t *testing.T) { testConflict(t, newStore(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, newStore(t)) })
	t.Run("SchemaVersion", func(t *testing.T) { testSchemaVersion(t, newStore(t)) })
	t.Run("PlayersApart", func(t *testing.T) { testPlayersApart(t, newStore(t)) })
	t.Run("ConcurrentKeysMerge", func(t *testing.T) { testConcurrentKeys(t, newStore(t)) })
	t.Run("ConcurrentSameKey", func(t *testing.T) { testConcurrentSameKey(t, newStore(t)) })
}

func raw(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func load(t *testing.T, s settings.Store, player string) settings.Snapshot {
	t.Helper()
	snap, err := s.Load(context.Background(), player)
	if err != nil {
		t.Fatalf("Load(%q): %v", player, err)
	}
	return snap
}

func apply(t *testing.T, s settings.Store, player string, schema int, ws ...settings.Write) settings.Snapshot {
	t.Helper()
	snap, err := s.Apply(context.Background(), player, schema, ws)
	if err != nil {
		t.Fatalf("Apply(%q): %v", player, err)
	}
	return snap
}

func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return fmt.Sprint(x) == fmt.Sprint(y)
}

func testEmptyLoad(t *testing.T, s settings.Store) {
	snap := load(t, s, "nobody")
	if len(snap.Entries) != 0 || snap.Rev != 0 || snap.Schema != 0 {
		t.Errorf("empty player: %+v, want nothing", snap)
	}
}

func testApplyAndLoad(t *testing.T, s settings.Store) {
	got := apply(t, s, "p", 2,
		settings.Write{Key: "audio.music", Value: raw(0.5)},
		settings.Write{Key: "controls.bindings", Value: raw(map[string]string{"jump": "Space"})},
		settings.Write{Key: "studio.future_key", Value: raw("kept")}) // unknown to any schema: kept
	if got.Rev <= 0 {
		t.Fatalf("rev %d after first write, want > 0", got.Rev)
	}
	for _, k := range []string{"audio.music", "controls.bindings", "studio.future_key"} {
		if e := got.Entries[k]; e.Rev != got.Rev {
			t.Errorf("%s rev %d, want the write's %d", k, e.Rev, got.Rev)
		}
	}
	snap := load(t, s, "p")
	if snap.Rev != got.Rev || snap.Schema != 2 || len(snap.Entries) != 3 {
		t.Fatalf("loaded %+v, want rev %d schema 2 and 3 entries", snap, got.Rev)
	}
	if !sameJSON(snap.Entries["controls.bindings"].Value, raw(map[string]string{"jump": "Space"})) {
		t.Errorf("bindings %s", snap.Entries["controls.bindings"].Value)
	}
	next := apply(t, s, "p", 2, settings.Write{Key: "audio.music", Value: raw(0.6), IfRev: got.Rev})
	if next.Rev <= got.Rev || next.Entries["audio.music"].Rev != next.Rev || next.Entries["studio.future_key"].Rev != got.Rev {
		t.Errorf("second write: %+v (first rev %d)", next, got.Rev)
	}
	if !sameJSON(next.Entries["audio.music"].Value, raw(0.6)) {
		t.Errorf("audio.music %s, want 0.6", next.Entries["audio.music"].Value)
	}
}

func testConflict(t *testing.T, s settings.Store) {
	first := apply(t, s, "p", 2, settings.Write{Key: "a.x", Value: raw(1)}, settings.Write{Key: "a.y", Value: raw(1)})
	_ = apply(t, s, "p", 2, settings.Write{Key: "a.x", Value: raw(2), IfRev: first.Rev})
	// Stale a.x, absent-but-claimed a.z, fresh a.y: nothing lands.
	_, err := s.Apply(context.Background(), "p", 2, []settings.Write{
		{Key: "a.x", Value: raw(3), IfRev: first.Rev},
		{Key: "a.y", Value: raw(3), IfRev: first.Rev},
		{Key: "a.z", Value: raw(3), IfRev: 7},
		{Key: "a.w", Value: raw(3), IfRev: 0},
	})
	var ce *settings.ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, settings.ErrConflict) {
		t.Fatalf("stale write: %v, want a *ConflictError", err)
	}
	if want := []string{"a.x", "a.z"}; !slices.Equal(ce.Keys, want) {
		t.Errorf("conflict keys %v, want %v", ce.Keys, want)
	}
	if e, ok := ce.Current["a.x"]; !ok || !sameJSON(e.Value, raw(2)) || e.Rev <= first.Rev {
		t.Errorf("current a.x %+v, want value 2 at a newer rev", e)
	}
	if _, ok := ce.Current["a.z"]; ok {
		t.Errorf("current has absent a.z")
	}
	snap := load(t, s, "p")
	if !sameJSON(snap.Entries["a.y"].Value, raw(1)) {
		t.Errorf("a.y %s after a refused write, want 1 (all or nothing)", snap.Entries["a.y"].Value)
	}
	if _, ok := snap.Entries["a.w"]; ok {
		t.Error("a.w written by a refused write")
	}
	// AnyRev writes over anything.
	after := apply(t, s, "p", 2, settings.Write{Key: "a.x", Value: raw(9), IfRev: settings.AnyRev})
	if !sameJSON(after.Entries["a.x"].Value, raw(9)) {
		t.Errorf("AnyRev write: a.x %s", after.Entries["a.x"].Value)
	}
}

func testDelete(t *testing.T, s settings.Store) {
	w := apply(t, s, "p", 2, settings.Write{Key: "a.x", Value: raw(1)}, settings.Write{Key: "a.y", Value: raw(1)})
	d := apply(t, s, "p", 2, settings.Write{Key: "a.x", IfRev: w.Rev})
	if _, ok := d.Entries["a.x"]; ok || d.Rev <= w.Rev {
		t.Fatalf("after delete: %+v", d)
	}
	if _, ok := load(t, s, "p").Entries["a.x"]; ok {
		t.Fatal("deleted key loaded")
	}
	// Recreating a deleted key expects rev 0.
	if _, err := s.Apply(context.Background(), "p", 2, []settings.Write{{Key: "a.x", Value: raw(2), IfRev: w.Rev}}); !errors.Is(err, settings.ErrConflict) {
		t.Errorf("write at the deleted key's old rev: %v, want ErrConflict", err)
	}
	re := apply(t, s, "p", 2, settings.Write{Key: "a.x", Value: raw(2)})
	if re.Entries["a.x"].Rev <= d.Rev {
		t.Errorf("recreated rev %d, want above %d", re.Entries["a.x"].Rev, d.Rev)
	}
}

func testSchemaVersion(t *testing.T, s settings.Store) {
	apply(t, s, "p", 1, settings.Write{Key: "a.x", Value: raw(1)})
	if v := load(t, s, "p").Schema; v != 1 {
		t.Errorf("schema %d, want 1", v)
	}
	apply(t, s, "p", 3, settings.Write{Key: "a.x", Value: raw(2), IfRev: settings.AnyRev})
	apply(t, s, "p", 2, settings.Write{Key: "a.y", Value: raw(2)}) // an older server writing
	if v := load(t, s, "p").Schema; v != 3 {
		t.Errorf("schema %d, want 3 (never lowered)", v)
	}
}

func testPlayersApart(t *testing.T, s settings.Store) {
	players := []string{"p", "P", "../p", "p/../../etc", "{p}", "p}", "игрок", "a b", ".", "..", "p\x00"}
	for i, p := range players {
		apply(t, s, p, 2, settings.Write{Key: "a.x", Value: raw(i)})
	}
	for i, p := range players {
		snap := load(t, s, p)
		if !sameJSON(snap.Entries["a.x"].Value, raw(i)) || len(snap.Entries) != 1 {
			t.Errorf("player %q: %+v, want a.x = %d alone", p, snap.Entries, i)
		}
	}
}

func testConcurrentKeys(t *testing.T, s settings.Store) {
	const writers, rounds = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			key := fmt.Sprintf("a.k%d", w)
			var rev int64
			for i := range rounds {
				snap, err := s.Apply(context.Background(), "p", 2, []settings.Write{{Key: key, Value: raw(i), IfRev: rev}})
				if err != nil {
					errs <- fmt.Errorf("writer %d round %d: %w", w, i, err)
					return
				}
				rev = snap.Entries[key].Rev
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	snap := load(t, s, "p")
	for w := range writers {
		if e := snap.Entries[fmt.Sprintf("a.k%d", w)]; !sameJSON(e.Value, raw(rounds-1)) {
			t.Errorf("a.k%d = %s, want %d", w, e.Value, rounds-1)
		}
	}
}

func testConcurrentSameKey(t *testing.T, s settings.Store) {
	base := apply(t, s, "p", 2, settings.Write{Key: "a.x", Value: raw(0)})
	const writers = 6
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, lost := 0, 0
	for w := range writers {
		wg.Go(func() {
			_, err := s.Apply(context.Background(), "p", 2, []settings.Write{{Key: "a.x", Value: raw(w + 1), IfRev: base.Rev}})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case errors.Is(err, settings.ErrConflict):
				lost++
			default:
				t.Errorf("writer %d: %v", w, err)
			}
		})
	}
	wg.Wait()
	if won != 1 || lost != writers-1 {
		t.Errorf("%d writes won and %d conflicted from one rev, want 1 and %d", won, lost, writers-1)
	}
}
