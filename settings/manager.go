package settings

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bodybroker/sdk/eventbus"
)

// Defaults of Options.
const (
	DefaultPreviewTimeout     = 15 * time.Second
	DefaultMaxPreviews        = 10000
	DefaultSubscriptionBuffer = 64
	// MaxPlayerIDBytes bounds a player ID.
	MaxPlayerIDBytes = 128
)

// Options configures a [Manager]. The zero value is valid: the built-in
// schema on an in-memory store, no platform, device or server layers, no
// rules and no event bus.
type Options struct {
	// Schema defines the keys; nil means Builtin().
	Schema *Schema
	// Store persists players' values; nil means a new *MemoryStore.
	Store Store
	// Platforms holds the platform layer, by platform name ("steamdeck",
	// "ps5"): values that override the defaults on that platform.
	Platforms map[string]map[string]any
	// Devices holds device profiles by name ("low-end-laptop", a
	// benchmark result): values above the platform layer.
	Devices map[string]map[string]any
	// Overrides is the server layer: values above anything a player set
	// (a kill switch, an event's forced setting).
	Overrides map[string]any
	// Rules clamp number settings per mode at every resolve, with a
	// reason ("FOV limited to 110 in ranked"). Keys tagged TagCompetitive
	// are the usual subjects.
	Rules []Rule
	// Bus, if set, receives every [Changed] on [TopicChanged], keyed by
	// player ID, after in-process subscribers; a failed publish is logged.
	Bus *eventbus.Bus
	// Now returns the current time; nil means time.Now. Preview timeouts
	// run on real timers (fake them with testing/synctest).
	Now func() time.Time
	// Logger receives warnings; nil means slog.Default().
	Logger *slog.Logger
	// PreviewTimeout is how long a preview lives before it reverts on its
	// own, when Begin is given 0; 0 means DefaultPreviewTimeout.
	PreviewTimeout time.Duration
	// MaxPreviews bounds open previews across all players (each holds a
	// timer and at most one value per schema key); Begin beyond it fails
	// with ErrPreviewLimit. 0 means DefaultMaxPreviews.
	MaxPreviews int
	// MaxDocumentBytes bounds an encoded change set or document; 0 means
	// DefaultMaxDocumentBytes.
	MaxDocumentBytes int
	// SubscriptionBuffer is the capacity of each Subscription's channel;
	// 0 means DefaultSubscriptionBuffer.
	SubscriptionBuffer int
}

// Manager reads, validates, changes and previews players' settings over a
// [Store]. It is safe for concurrent use; the zero value is not usable:
// create one with [New] and release it with Close, which stops preview
// timers and closes subscriptions.
type Manager struct {
	opts   Options
	schema *Schema
	store  Store
	now    func() time.Time
	log    *slog.Logger
	seed   maphash.Seed

	locks [64]sync.Mutex // per-player serialisation (striped)

	mu       sync.Mutex
	closed   bool
	previews map[string]*preview // by player
	stats    Stats
	expiring sync.WaitGroup // preview timers' callbacks in flight; Close waits

	subMu sync.Mutex
	subs  map[*Subscription]struct{}
}

type preview struct {
	id       string
	values   map[string]any // validated
	deadline time.Time
	timer    *time.Timer
}

// Change is one key's new value in a write. IfRev is the key's revision
// the writer last saw (0: it saw no stored value), or AnyRev to write
// regardless; a stale IfRev is resolved by the key's ConflictPolicy.
type Change struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
	IfRev int64  `json:"rev"`
}

// Result describes a stored change.
type Result struct {
	// Rev is the player's revision after the write; every written key
	// now has it.
	Rev int64 `json:"rev"`
	// Keys lists the effective values that changed.
	Keys []KeyChange `json:"keys"`
	// Merged lists keys written over a newer value by their conflict
	// policy (last writer wins, or max).
	Merged []string `json:"merged,omitempty"`
}

// Stats is a snapshot of a Manager's counters.
type Stats struct {
	Writes            int64 // successful Set, SetServer, Confirm and ResetToDefaults calls
	Rejected          int64 // writes refused by validation
	Conflicts         int64 // writes refused by ConflictReject
	Merged            int64 // keys resolved by a conflict policy
	Migrated          int64 // documents migrated to the current schema
	PreviewsOpen      int64
	PreviewsConfirmed int64
	PreviewsReverted  int64 // by Revert
	PreviewsExpired   int64 // by timeout
	PublishFailures   int64
	Dropped           int64 // in-process notifications dropped on full subscriptions
}

// New validates opts and returns a Manager.
func New(opts Options) (*Manager, error) {
	if opts.Schema == nil {
		opts.Schema = Builtin()
	}
	if opts.Store == nil {
		opts.Store = &MemoryStore{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.PreviewTimeout < 0 || opts.MaxPreviews < 0 || opts.MaxDocumentBytes < 0 || opts.SubscriptionBuffer < 0 {
		return nil, fmt.Errorf("%w: negative limit", ErrInvalidOptions)
	}
	if opts.PreviewTimeout == 0 {
		opts.PreviewTimeout = DefaultPreviewTimeout
	}
	if opts.MaxPreviews == 0 {
		opts.MaxPreviews = DefaultMaxPreviews
	}
	if opts.MaxDocumentBytes == 0 {
		opts.MaxDocumentBytes = DefaultMaxDocumentBytes
	}
	if opts.SubscriptionBuffer == 0 {
		opts.SubscriptionBuffer = DefaultSubscriptionBuffer
	}
	s := opts.Schema
	check := func(what string, m map[string]any) (map[string]any, error) {
		v, err := s.Validate(m)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidOptions, what, err)
		}
		return v, nil
	}
	var err error
	platforms, devices := map[string]map[string]any{}, map[string]map[string]any{}
	for name, m := range opts.Platforms {
		if platforms[name], err = check("platform "+name, m); err != nil {
			return nil, err
		}
	}
	for name, m := range opts.Devices {
		if devices[name], err = check("device "+name, m); err != nil {
			return nil, err
		}
	}
	opts.Platforms, opts.Devices = platforms, devices
	if opts.Overrides, err = check("overrides", opts.Overrides); err != nil {
		return nil, err
	}
	opts.Rules = slices.Clone(opts.Rules)
	for _, r := range opts.Rules {
		st, ok := s.Lookup(r.Key)
		if !ok || (st.Type != Int && st.Type != Float) || r.Min > r.Max || math.IsNaN(r.Min) || math.IsNaN(r.Max) {
			return nil, fmt.Errorf("%w: rule on %q: want a number key and Min ≤ Max", ErrInvalidOptions, r.Key)
		}
	}
	return &Manager{
		opts: opts, schema: s, store: opts.Store, now: opts.Now, log: opts.Logger, seed: maphash.MakeSeed(),
		previews: map[string]*preview{}, subs: map[*Subscription]struct{}{},
	}, nil
}

// Schema returns the manager's schema.
func (m *Manager) Schema() *Schema { return m.schema }

func (m *Manager) lock(player string) func() {
	l := &m.locks[maphash.String(m.seed, player)%uint64(len(m.locks))]
	l.Lock()
	return l.Unlock
}

func checkPlayer(player string) error {
	if player == "" || len(player) > MaxPlayerIDBytes {
		return fmt.Errorf("%w: %d bytes, want 1-%d", ErrBadPlayer, len(player), MaxPlayerIDBytes)
	}
	return nil
}

func (m *Manager) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// Get returns the player's effective settings for target: defaults,
// platform, device profile, stored values, the open preview's values and
// the server's overrides, clamped by the rules of target.Mode. A stored
// document of an older schema version is migrated and stored first.
func (m *Manager) Get(ctx context.Context, player string, target Target) (*Resolved, error) {
	if err := checkPlayer(player); err != nil {
		return nil, err
	}
	if m.isClosed() {
		return nil, ErrClosed
	}
	unlock := m.lock(player)
	defer unlock()
	snap, err := m.load(ctx, player)
	if err != nil {
		return nil, err
	}
	return m.resolve(player, snap, target, true), nil
}

// load reads and, when needed, migrates the player's snapshot. The
// caller holds the player's lock.
func (m *Manager) load(ctx context.Context, player string) (Snapshot, error) {
	snap, err := m.store.Load(ctx, player)
	if err != nil {
		return Snapshot{}, fmt.Errorf("settings: load %s: %w", player, err)
	}
	if snap.Schema >= m.schema.version || len(snap.Entries) == 0 {
		return snap, nil
	}
	for attempt := 0; ; attempt++ {
		writes, err := migrateEntries(m.schema, snap)
		if err != nil {
			return Snapshot{}, err
		}
		next, err := m.store.Apply(ctx, player, m.schema.version, writes)
		if errors.Is(err, ErrConflict) && attempt < 2 {
			// Another server wrote meanwhile (perhaps migrating the same
			// document): read again and migrate what is there, if needed.
			if snap, err = m.store.Load(ctx, player); err != nil {
				return Snapshot{}, fmt.Errorf("settings: load %s: %w", player, err)
			}
			if snap.Schema >= m.schema.version {
				return snap, nil
			}
			continue
		}
		if err != nil {
			return Snapshot{}, fmt.Errorf("settings: store migrated %s: %w", player, err)
		}
		m.count(func(s *Stats) { s.Migrated++ })
		return next, nil
	}
}

// migrateEntries runs the schema's migrations over a snapshot of an older
// version (0 counts as 1) and returns the writes that bring it to the
// current version: changed and added keys, deletions, each conditional on
// the revision in snap. Keys the migrations do not touch, known or not,
// are left alone.
func migrateEntries(s *Schema, snap Snapshot) ([]Write, error) {
	values := make(map[string]any, len(snap.Entries))
	for k, e := range snap.Entries {
		var v any
		if err := json.Unmarshal(e.Value, &v); err != nil {
			continue // not JSON: leave it to the store's owner
		}
		values[k] = v
	}
	before := maps.Clone(values)
	for v := max(snap.Schema, 1); v < s.version; v++ {
		if err := s.migrations[v](values); err != nil {
			return nil, fmt.Errorf("settings: migration from version %d: %w", v, err)
		}
	}
	var writes []Write
	for _, k := range slices.Sorted(maps.Keys(values)) {
		old, had := before[k]
		b, err := json.Marshal(values[k])
		if err != nil {
			return nil, fmt.Errorf("settings: migration from version %d: key %q: %w", max(snap.Schema, 1), k, err)
		}
		if had {
			ob, _ := json.Marshal(old)
			if bytes.Equal(b, ob) {
				continue
			}
		}
		writes = append(writes, Write{Key: k, Value: b, IfRev: snap.Entries[k].Rev})
	}
	for _, k := range slices.Sorted(maps.Keys(before)) {
		if _, ok := values[k]; !ok {
			writes = append(writes, Write{Key: k, IfRev: snap.Entries[k].Rev})
		}
	}
	return writes, nil
}

// storedValues decodes the entries the schema knows; the rest stay in
// the store untouched.
func (m *Manager) storedValues(snap Snapshot) map[string]any {
	out := make(map[string]any, len(snap.Entries))
	for k, e := range snap.Entries {
		if _, ok := m.schema.byKey[k]; !ok {
			continue
		}
		var v any
		if json.Unmarshal(e.Value, &v) == nil {
			out[k] = v
		}
	}
	return out
}

func (m *Manager) resolve(player string, snap Snapshot, t Target, withPreview bool) *Resolved {
	layers := map[Layer]map[string]any{
		LayerPlatform: m.opts.Platforms[t.Platform],
		LayerDevice:   m.opts.Devices[t.Device],
		LayerPlayer:   m.storedValues(snap),
		LayerServer:   m.opts.Overrides,
	}
	if withPreview {
		m.mu.Lock()
		if p := m.previews[player]; p != nil {
			layers[LayerPreview] = maps.Clone(p.values)
		}
		m.mu.Unlock()
	}
	r := m.schema.Resolve(layers, t.Mode, m.opts.Rules)
	r.revs = make(map[string]int64, len(snap.Entries))
	for k, e := range snap.Entries {
		r.revs[k] = e.Rev
	}
	r.rev = snap.Rev
	return r
}

// validateChanges checks a change set: every key known, writable by the
// caller, valid, the whole set within MaxDocumentBytes.
func (m *Manager) validateChanges(changes []Change, server bool) (map[string]any, error) {
	if len(changes) > len(m.schema.settings) {
		return nil, &ValidationError{Problems: []Problem{{Key: "", Reason: fmt.Sprintf("%d changes, more than the %d keys", len(changes), len(m.schema.settings)), Err: ErrTooLarge}}}
	}
	in := make(map[string]any, len(changes))
	var probs []Problem
	size := 0
	for _, c := range changes {
		if _, dup := in[c.Key]; dup {
			probs = append(probs, Problem{Key: c.Key, Reason: "changed twice in one write", Err: ErrNotAllowed})
			continue
		}
		b, err := json.Marshal(c.Value)
		if err != nil {
			probs = append(probs, Problem{Key: c.Key, Reason: "value cannot be encoded", Err: ErrWrongType})
			continue
		}
		size += len(b) + len(c.Key)
		if st, ok := m.schema.byKey[c.Key]; ok && !server && st.HasTag(TagServerOnly) {
			probs = append(probs, Problem{Key: c.Key, Reason: "only the server may set it", Err: ErrServerOnly})
			continue
		}
		in[c.Key] = c.Value
	}
	if size > m.opts.MaxDocumentBytes {
		return nil, &ValidationError{Problems: []Problem{{Reason: fmt.Sprintf("%d bytes, limit %d", size, m.opts.MaxDocumentBytes), Err: ErrTooLarge}}}
	}
	out, err := m.schema.Validate(in)
	var ve *ValidationError
	if errors.As(err, &ve) {
		probs = append(probs, ve.Problems...)
	}
	if probs != nil {
		slices.SortStableFunc(probs, func(a, b Problem) int { return strings.Compare(a.Key, b.Key) })
		return nil, &ValidationError{Problems: probs}
	}
	return out, nil
}

// Set validates a client's changes and stores them atomically. Every
// offending key is reported at once in a *ValidationError; keys tagged
// TagServerOnly are refused with ErrServerOnly. A change made from a stale
// revision is resolved by its key's ConflictPolicy; keys with
// ConflictReject fail the whole write with a *ConflictError. Setting
// video.quality (a preset) also sets every scalability group the change
// set does not set itself. Subscribers and the bus see a KindApplied
// Changed.
func (m *Manager) Set(ctx context.Context, player string, changes []Change) (Result, error) {
	return m.set(ctx, player, changes, false)
}

// SetServer is Set on the server's authority: TagServerOnly keys may be
// written. Values are still validated.
func (m *Manager) SetServer(ctx context.Context, player string, changes []Change) (Result, error) {
	return m.set(ctx, player, changes, true)
}

func (m *Manager) set(ctx context.Context, player string, changes []Change, server bool) (Result, error) {
	if err := checkPlayer(player); err != nil {
		return Result{}, err
	}
	if m.isClosed() {
		return Result{}, ErrClosed
	}
	values, err := m.validateChanges(changes, server)
	if err != nil {
		m.count(func(s *Stats) { s.Rejected++ })
		return Result{}, err
	}
	revs := make(map[string]int64, len(changes))
	for _, c := range changes {
		revs[c.Key] = c.IfRev
	}
	m.expandPreset(values, revs)
	unlock := m.lock(player)
	defer unlock()
	before, err := m.load(ctx, player)
	if err != nil {
		return Result{}, err
	}
	writes := make([]Write, 0, len(values))
	for _, k := range slices.Sorted(maps.Keys(values)) {
		b, _ := json.Marshal(values[k])
		writes = append(writes, Write{Key: k, Value: b, IfRev: revs[k]})
	}
	after, merged, err := m.apply(ctx, player, writes)
	if err != nil {
		return Result{}, err
	}
	return m.finish(ctx, player, before, after, merged, KindApplied), nil
}

// expandPreset sets each scalability group to the quality preset's level
// unless the change set sets it.
func (m *Manager) expandPreset(values map[string]any, revs map[string]int64) {
	q, ok := values["video.quality"]
	if !ok {
		return
	}
	for _, k := range scalabilityGroups {
		if _, known := m.schema.byKey[k]; !known {
			continue
		}
		if _, set := values[k]; !set {
			values[k] = q
			revs[k] = AnyRev
		}
	}
}

// apply stores writes, resolving conflicts by policy. The caller holds
// the player's lock.
func (m *Manager) apply(ctx context.Context, player string, writes []Write) (Snapshot, []string, error) {
	var merged []string
	for attempt := 0; ; attempt++ {
		snap, err := m.store.Apply(ctx, player, m.schema.version, writes)
		var ce *ConflictError
		if !errors.As(err, &ce) {
			if err != nil {
				return Snapshot{}, nil, fmt.Errorf("settings: store %s: %w", player, err)
			}
			slices.Sort(merged)
			merged = slices.Compact(merged)
			m.count(func(s *Stats) { s.Merged += int64(len(merged)) })
			return snap, merged, nil
		}
		if attempt == 3 {
			return Snapshot{}, nil, fmt.Errorf("settings: store %s: still conflicting after %d attempts: %w", player, attempt, err)
		}
		var rejected []string
		for i, w := range writes {
			if !slices.Contains(ce.Keys, w.Key) {
				continue
			}
			cur, exists := ce.Current[w.Key]
			policy := ConflictReject
			if st, ok := m.schema.byKey[w.Key]; ok {
				policy = st.Conflict
			}
			switch policy {
			case ConflictReject:
				rejected = append(rejected, w.Key)
				continue
			case ConflictMax:
				if exists && numLess(w.Value, cur.Value) {
					writes[i].Value = cur.Value
				}
			}
			writes[i].IfRev = cur.Rev // 0 when deleted
			merged = append(merged, w.Key)
		}
		if rejected != nil {
			m.count(func(s *Stats) { s.Conflicts++ })
			cur := map[string]Entry{}
			for _, k := range rejected {
				if e, ok := ce.Current[k]; ok {
					cur[k] = e
				}
			}
			return Snapshot{}, nil, &ConflictError{Keys: rejected, Current: cur}
		}
	}
}

// numLess reports whether a < b when both are JSON numbers.
func numLess(a, b json.RawMessage) bool {
	var x, y float64
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return x < y
}

// finish computes what changed, notifies, and returns the Result. The
// caller holds the player's lock.
func (m *Manager) finish(ctx context.Context, player string, before, after Snapshot, merged []string, kind Kind) Result {
	m.count(func(s *Stats) { s.Writes++ })
	old := m.resolve(player, before, Target{}, true)
	cur := m.resolve(player, after, Target{}, true)
	keys := diff(old, cur)
	m.notify(ctx, Changed{Version: 1, PlayerID: player, Kind: kind, Keys: keys, Rev: after.Rev, At: m.now()})
	return Result{Rev: after.Rev, Keys: keys, Merged: merged}
}

func diff(a, b *Resolved) []KeyChange {
	var out []KeyChange
	for _, k := range b.keys {
		o, n := a.values[k], b.values[k]
		if !equalValue(o, n) {
			out = append(out, KeyChange{Key: k, Old: cloneValue(o), New: cloneValue(n)})
		}
	}
	return out
}

// ResetToDefaults removes the player's stored values of every key in the
// given groups (all keys the schema knows, when none is given), so the
// lower layers show again; keys the schema does not know are kept.
// Subscribers see a KindReset Changed.
func (m *Manager) ResetToDefaults(ctx context.Context, player string, groups ...string) (Result, error) {
	if err := checkPlayer(player); err != nil {
		return Result{}, err
	}
	if m.isClosed() {
		return Result{}, ErrClosed
	}
	for _, g := range groups {
		if !slices.Contains(m.schema.Groups(), g) {
			return Result{}, &ValidationError{Problems: []Problem{{Key: g, Reason: "unknown group", Err: ErrUnknownKey}}}
		}
	}
	unlock := m.lock(player)
	defer unlock()
	before, err := m.load(ctx, player)
	if err != nil {
		return Result{}, err
	}
	var writes []Write
	for _, k := range slices.Sorted(maps.Keys(before.Entries)) {
		st, ok := m.schema.byKey[k]
		if ok && (len(groups) == 0 || slices.Contains(groups, st.Group())) {
			writes = append(writes, Write{Key: k, IfRev: AnyRev})
		}
	}
	if len(writes) == 0 {
		return Result{Rev: before.Rev}, nil
	}
	after, _, err := m.apply(ctx, player, writes)
	if err != nil {
		return Result{}, err
	}
	return m.finish(ctx, player, before, after, nil, KindReset), nil
}

func (m *Manager) count(f func(*Stats)) {
	m.mu.Lock()
	f(&m.stats)
	m.mu.Unlock()
}

// Stats returns a snapshot of the counters.
func (m *Manager) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.PreviewsOpen = int64(len(m.previews))
	return s
}

// Subscribe returns a Subscription that receives the changes match
// selects, for every player.
func (m *Manager) Subscribe(match Match) (*Subscription, error) {
	m.subMu.Lock()
	defer m.subMu.Unlock()
	if m.isClosed() {
		return nil, ErrClosed
	}
	s := &Subscription{m: m, match: Match{Keys: slices.Clone(match.Keys), Groups: slices.Clone(match.Groups)},
		ch: make(chan Changed, m.opts.SubscriptionBuffer)}
	m.subs[s] = struct{}{}
	return s, nil
}

// notify delivers c to subscribers and the bus. The caller holds the
// player's lock, so one player's notifications keep their order.
func (m *Manager) notify(ctx context.Context, c Changed) {
	if len(c.Keys) == 0 {
		return
	}
	m.subMu.Lock()
	for s := range m.subs {
		f, ok := s.filtered(c)
		if !ok {
			continue
		}
		select {
		case s.ch <- f:
		default:
			s.dropped.Add(1)
			m.count(func(st *Stats) { st.Dropped++ })
		}
	}
	m.subMu.Unlock()
	if m.opts.Bus != nil {
		if err := eventbus.Publish(ctx, m.opts.Bus, TopicChanged, c, eventbus.WithKey(c.PlayerID)); err != nil {
			m.count(func(st *Stats) { st.PublishFailures++ })
			m.log.Warn("settings: publish failed", "topic", TopicChanged, "player", c.PlayerID, "err", err)
		}
	}
}

// Close stops every preview timer (open previews are dropped: their
// values were never stored), waits for a timeout revert in progress, and
// closes every Subscription. It is
// idempotent; later calls return ErrClosed, as do other methods.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	m.closed = true
	for p, pv := range m.previews {
		pv.timer.Stop()
		delete(m.previews, p)
	}
	m.mu.Unlock()
	m.expiring.Wait() // a timer that fired before Stop finds the preview gone
	m.subMu.Lock()
	for s := range m.subs {
		s.closeLocked()
	}
	m.subMu.Unlock()
	return nil
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
