package settings

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// Entry is one stored key: its JSON value and the revision the store
// issued when it was last written.
type Entry struct {
	Value json.RawMessage `json:"v"`
	Rev   int64           `json:"r"`
}

// Snapshot is a player's stored settings. Entries holds every stored key,
// including keys the current schema does not know (written by a newer
// server, or removed since): they are preserved, never dropped. Schema is
// the schema version the entries were written under (0 for a player with
// nothing stored). Rev is the player's highest revision.
type Snapshot struct {
	Schema  int
	Rev     int64
	Entries map[string]Entry
}

// AnyRev as a Write's IfRev writes whatever revision is stored.
const AnyRev int64 = -1

// Write is one key's change in a [Store.Apply]. A nil Value deletes the
// key. IfRev is the revision the writer saw (0: the key was absent), or
// AnyRev.
type Write struct {
	Key   string
	Value json.RawMessage
	IfRev int64
}

// Store persists players' settings with per-key revisions. Implementations
// must be safe for concurrent use.
//
// Apply is atomic per player: either every write lands or none does. A
// write whose IfRev differs from the key's stored revision (0 for an
// absent key) fails the whole call with a *[ConflictError] that lists
// every such key with its current entry. On success every written key
// gets the same new revision, greater than any the player had; Apply
// records schema as the snapshot's schema version when it is higher than
// the stored one, and returns the snapshot after the writes.
//
// Load of a player with nothing stored returns an empty Snapshot and no
// error. The conformance suite is settingstest.TestStore.
type Store interface {
	Load(ctx context.Context, player string) (Snapshot, error)
	Apply(ctx context.Context, player string, schema int, writes []Write) (Snapshot, error)
}

// MemoryStore is an in-memory [Store] for tests and single-process
// servers. It is safe for concurrent use; the zero value is ready to use.
// It holds every player it has seen until the process ends; bound it (or
// use a file or Redis store) for large player counts.
type MemoryStore struct {
	mu      sync.Mutex
	players map[string]*Snapshot
}

var _ Store = (*MemoryStore)(nil)

// Load implements [Store].
func (m *MemoryStore) Load(ctx context.Context, player string) (Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return Snapshot{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return cloneSnapshot(m.players[player]), nil
}

// Apply implements [Store].
func (m *MemoryStore) Apply(ctx context.Context, player string, schema int, writes []Write) (Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return Snapshot{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.players == nil {
		m.players = make(map[string]*Snapshot)
	}
	cur := m.players[player]
	if cur == nil {
		cur = &Snapshot{Entries: map[string]Entry{}}
	}
	next := cloneSnapshot(cur)
	if err := ApplyWrites(&next, schema, writes); err != nil {
		return Snapshot{}, err
	}
	m.players[player] = &next
	return cloneSnapshot(&next), nil
}

// ApplyWrites applies writes to snap in place with the semantics of
// [Store.Apply]; store implementations that hold a whole snapshot (the file
// store) share it. On a conflict snap is unchanged.
func ApplyWrites(snap *Snapshot, schema int, writes []Write) error {
	var conflict *ConflictError
	for _, w := range writes {
		if w.IfRev == AnyRev {
			continue
		}
		e, ok := snap.Entries[w.Key]
		if e.Rev != w.IfRev {
			if conflict == nil {
				conflict = &ConflictError{Current: map[string]Entry{}}
			}
			conflict.Keys = append(conflict.Keys, w.Key)
			if ok {
				conflict.Current[w.Key] = e
			}
		}
	}
	if conflict != nil {
		slices.Sort(conflict.Keys)
		conflict.Keys = slices.Compact(conflict.Keys)
		return conflict
	}
	for _, w := range writes {
		if !json.Valid(w.Value) && w.Value != nil {
			return fmt.Errorf("%w: key %q: value is not JSON", ErrMalformed, w.Key)
		}
	}
	if snap.Entries == nil {
		snap.Entries = map[string]Entry{}
	}
	if len(writes) > 0 {
		snap.Rev++
	}
	for _, w := range writes {
		if w.Value == nil {
			delete(snap.Entries, w.Key)
			continue
		}
		snap.Entries[w.Key] = Entry{Value: slices.Clone(w.Value), Rev: snap.Rev}
	}
	snap.Schema = max(snap.Schema, schema)
	return nil
}

func cloneSnapshot(s *Snapshot) Snapshot {
	if s == nil {
		return Snapshot{Entries: map[string]Entry{}}
	}
	c := *s
	c.Entries = maps.Clone(s.Entries)
	if c.Entries == nil {
		c.Entries = map[string]Entry{}
	}
	return c
}
