package worldtime

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bodybroker/sdk/eventbus"
)

// Defaults for Options.
const (
	DefaultWorld          = "default"
	DefaultRefresh        = time.Second
	DefaultMaxTimers      = 1 << 24
	DefaultPublishTimeout = 5 * time.Second
	// DefaultStart is 07:00 on day 1, as in the original system.
	DefaultStart = Instant(7 * hourMicros)
)

// Options configures a [Clock]. The zero value is valid: world "default",
// a private MemoryStore, the default calendar, 60 real seconds per game
// hour, starting at 07:00 on day 1.
type Options struct {
	// World is the world ID the clock keeps time for; "" means "default".
	// Events and the store are keyed by it.
	World string
	// Store holds the timeline; clocks in several processes that share a
	// store (worldtime/redisstore) share one time. Nil means a new
	// MemoryStore private to this clock.
	Store Store
	// Calendar describes days, phases, weeks, years and the moon. It is
	// not stored: every clock of a world must use the same one.
	Calendar Calendar
	// Scale and Start apply only when the store holds no timeline for
	// the world yet: the first clock creates it. Zero Scale means
	// 60 real seconds per game hour (a 24-minute day); zero Start means
	// DefaultStart (07:00 on day 1) unless StartAtEpoch is set.
	Scale        Scale
	Start        Instant
	StartAtEpoch bool
	// Coalesce is the policy for boundaries crossed by a skip.
	Coalesce Coalesce
	// Bus, if set, receives phase, hour and day events (TopicPhase,
	// TopicHour, TopicDay, TopicSet), keyed by world ID, in order, a
	// skip's boundaries in one PublishBatch. Each event's ID is derived
	// from the world, kind, game instant and timeline version, so clocks
	// on several servers publish identical IDs for the same boundary and a
	// subscriber with a DedupWindow sees it once.
	Bus *eventbus.Bus
	// PublishTimeout bounds one publish to Bus; 0 means 5 s.
	PublishTimeout time.Duration
	// Refresh is how often the clock reloads the timeline from the Store
	// to pick up other servers' changes; 0 means 1 s. A store that is a
	// [Watcher] (the Redis store) also triggers a reload on each change,
	// and polling then only covers lost notifications. Schedule changes
	// at least this far ahead (Change.At) for every server to switch at
	// the same real instant. DisableRefresh turns polling and watching off
	// (call [Clock.Refresh] yourself).
	Refresh        time.Duration
	DisableRefresh bool
	// MaxTimers bounds pending timers (each costs about 44 bytes plus its
	// callback, up to twice that while buckets grow); 0 means 16,777,216,
	// about 0.7–1.5 GiB.
	MaxTimers int
	// Logger receives store and publish failures; nil means slog.Default().
	Logger *slog.Logger
	// Now is the real-time source; nil means time.Now. Waiting uses
	// real timers, so tests run the clock inside testing/synctest.
	Now func() time.Time
	// Manual starts no goroutine: events and timers are delivered only
	// when the caller calls [Clock.Tick] (from a game loop, or a test
	// with a fake Now), and the timeline is reloaded only by
	// [Clock.Refresh].
	Manual bool
}

// Clock is the authoritative game clock of one world. Create it with
// [New] (the zero value is not usable) and stop it with [Clock.Close]. It
// is safe for concurrent use. [Clock.Now] is lock-free; one goroutine per
// Clock (none with Options.Manual) delivers events and fires timers.
type Clock struct {
	opts  Options
	world string
	store Store
	cal   *calendar
	bnd   boundaries
	now   func() time.Time
	log   *slog.Logger

	view   atomic.Pointer[view]
	dcache atomic.Pointer[dayCache] // calendar of the day Now last saw

	mu        sync.Mutex // guards timers, observers, closed
	timers    timerHeap
	observers []*observer
	closed    bool
	sunMu     sync.Mutex  // guards OnSun re-arming
	stopping  atomic.Bool // set by Close: stop firing timers

	wake      chan struct{}
	reload    atomic.Bool // a Watcher said the stored timeline changed
	watchDone chan struct{}
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}

	// Guarded by procMu (held by the runner goroutine or Tick).
	procMu        sync.Mutex
	procDone      bool // set by Close under procMu: no processing after it
	lastReal      int64
	lastGame      Instant
	passedVersion int64
	outbox        []eventbus.Event

	timersFired, timersCancelled           atomic.Int64
	eventsEmitted, eventsCoalesced         atomic.Int64
	published, publishErrors               atomic.Int64
	storeLoads, storeSwaps, storeConflicts atomic.Int64
	storeErrors                            atomic.Int64
}

type observer struct{ fn func(Event) }

// New returns the clock of opts.World, loading its timeline from the store
// or creating it there (at opts.Start and opts.Scale) if there is none,
// and starts its goroutine. ctx bounds the store round trips.
func New(ctx context.Context, opts Options) (*Clock, error) {
	if opts.World == "" {
		opts.World = DefaultWorld
	}
	if opts.Store == nil {
		opts.Store = &MemoryStore{}
	}
	if opts.Scale == (Scale{}) {
		opts.Scale = defaultScale
	}
	if err := opts.Scale.validate(); err != nil {
		return nil, err
	}
	if opts.Start == 0 && !opts.StartAtEpoch {
		opts.Start = DefaultStart
	}
	if opts.Start < 0 {
		return nil, invalid("start", "%d is negative", opts.Start)
	}
	if opts.Coalesce > CoalesceLatest {
		return nil, invalid("coalesce", "unknown policy %d", opts.Coalesce)
	}
	if opts.Refresh < 0 || opts.PublishTimeout < 0 || opts.MaxTimers < 0 {
		return nil, invalid("options", "Refresh, PublishTimeout and MaxTimers must not be negative")
	}
	if opts.Refresh == 0 {
		opts.Refresh = DefaultRefresh
	}
	if opts.PublishTimeout == 0 {
		opts.PublishTimeout = DefaultPublishTimeout
	}
	if opts.MaxTimers == 0 {
		opts.MaxTimers = DefaultMaxTimers
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cal, err := opts.Calendar.compile()
	if err != nil {
		return nil, err
	}
	c := &Clock{
		opts: opts, world: opts.World, store: opts.Store, cal: cal, bnd: boundaries{cal},
		now: opts.Now, log: opts.Logger, wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	tl, err := c.loadOrCreate(ctx)
	if err != nil {
		return nil, err
	}
	c.view.Store(newView(tl))
	now := c.realNow()
	c.lastReal = now
	c.lastGame = tl.Segments[tl.segmentAt(now)].gameAt(now)
	for _, s := range tl.Segments {
		if s.RealEpoch.UnixNano() <= now {
			c.passedVersion = s.Version
		}
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	if opts.Manual {
		close(c.done)
	} else {
		w, _ := opts.Store.(Watcher)
		if w != nil && !opts.DisableRefresh {
			c.watchDone = make(chan struct{})
			go c.watch(w)
		}
		go c.run()
	}
	return c, nil
}

func (c *Clock) realNow() int64 { return c.now().UnixNano() }

func (c *Clock) loadOrCreate(ctx context.Context) (Timeline, error) {
	for range 8 {
		tl, err := c.load(ctx)
		if err == nil {
			return tl, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return Timeline{}, err
		}
		first := Timeline{World: c.world, Segments: []Segment{{
			Version: 1, Kind: ChangeStart, RealEpoch: time.Unix(0, c.realNow()).UTC(),
			GameEpoch: c.opts.Start, From: c.opts.Start, Scale: c.opts.Scale,
		}}}
		tl, err = c.swap(ctx, 0, first)
		if errors.Is(err, ErrConflict) {
			continue // another server created it first
		}
		return tl, err
	}
	return Timeline{}, fmt.Errorf("worldtime: creating world %q: %w", c.world, ErrConflict)
}

func (c *Clock) load(ctx context.Context) (Timeline, error) {
	c.storeLoads.Add(1)
	tl, err := c.store.Load(ctx, c.world)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			c.storeErrors.Add(1)
		}
		return Timeline{}, err
	}
	if err := tl.Validate(); err != nil {
		c.storeErrors.Add(1)
		return Timeline{}, fmt.Errorf("worldtime: stored timeline of %q: %w", c.world, err)
	}
	return tl, nil
}

func (c *Clock) swap(ctx context.Context, prev int64, tl Timeline) (Timeline, error) {
	c.storeSwaps.Add(1)
	out, err := c.store.Swap(ctx, c.world, prev, tl)
	if errors.Is(err, ErrConflict) {
		c.storeConflicts.Add(1)
	} else if err != nil {
		c.storeErrors.Add(1)
	}
	return out, err
}

// install makes tl the clock's view if it is newer, and wakes the runner.
func (c *Clock) install(tl Timeline) {
	for {
		cur := c.view.Load()
		if cur != nil && cur.tl.Version >= tl.Version {
			return
		}
		if c.view.CompareAndSwap(cur, newView(tl)) {
			break
		}
	}
	c.poke()
}

func (c *Clock) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// view is an immutable timeline with its segments in the form Now needs.
type view struct {
	tl   Timeline
	segs []cseg
}

type cseg struct {
	real   int64 // RealEpoch, Unix ns
	game   int64 // GameEpoch
	scale  Scale
	paused bool
}

func newView(tl Timeline) *view {
	v := &view{tl: tl, segs: make([]cseg, len(tl.Segments))}
	for i, s := range tl.Segments {
		v.segs[i] = cseg{real: s.RealEpoch.UnixNano(), game: int64(s.GameEpoch), scale: s.Scale, paused: s.Paused}
	}
	return v
}

// World returns the world ID.
func (c *Clock) World() string { return c.world }

// Now returns the current game time and calendar. It reads an immutable
// snapshot of the timeline: no lock, no allocation.
func (c *Clock) Now() Time { return c.At(c.now()) }

// At returns the game time and calendar at real instant t, as known to
// this clock (scheduled changes included).
func (c *Clock) At(t time.Time) Time {
	v := c.view.Load()
	r := t.UnixNano()
	i := len(v.segs) - 1
	for i > 0 && v.segs[i].real > r {
		i--
	}
	s := &v.segs[i]
	g := s.game
	if !s.paused && r > s.real {
		g, _ = addSat(g, s.scale.gameDelta(r-s.real))
	}
	var out Time
	c.cal.atCached(&c.dcache, Instant(g), &out)
	out.Paused = s.paused
	return out
}

// Calendar returns the calendar at game instant g.
func (c *Clock) Calendar(g Instant) Time {
	if g < 0 {
		g = 0
	}
	return c.cal.at(g)
}

// Timeline returns the clock's current view of the world's timeline.
func (c *Clock) Timeline() Timeline {
	tl := c.view.Load().tl
	tl.Segments = append([]Segment(nil), tl.Segments...)
	return tl
}

// Apply appends ch to the world's timeline in the store and returns the
// stored timeline. A change that changes nothing (pause while paused)
// returns the current timeline without a store write. When another
// server changed the timeline meanwhile, Apply reloads and re-applies the
// change (up to 8 times), unless ch.IfVersion asks for a specific
// version, in which case it returns ErrConflict. Invalid changes return a
// *ValueError; nothing is half-applied.
func (c *Clock) Apply(ctx context.Context, ch Change) (Timeline, error) {
	if c.isClosed() {
		return Timeline{}, ErrClosed
	}
	tl := c.view.Load().tl
	for range 8 {
		now := c.realNow()
		at := now
		if !ch.At.IsZero() {
			if ch.At.UnixNano() < now {
				return Timeline{}, invalid("change time", "%v is in the past (now %v)", ch.At.UTC(), time.Unix(0, now).UTC())
			}
			at = ch.At.UnixNano()
		}
		if ch.IfVersion != 0 && tl.Version < ch.IfVersion {
			// This clock has not seen that version yet: ask the store.
			var err error
			if tl, err = c.load(ctx); err != nil {
				return Timeline{}, err
			}
			c.install(tl)
		}
		if ch.IfVersion != 0 && tl.Version != ch.IfVersion {
			return Timeline{}, fmt.Errorf("worldtime: world %q is at version %d, not %d: %w", c.world, tl.Version, ch.IfVersion, ErrConflict)
		}
		next, changed, err := tl.apply(ch, at, now)
		if err != nil || !changed {
			return tl, err
		}
		stored, err := c.swap(ctx, tl.Version, next)
		if err == nil {
			c.install(stored)
			return stored, nil
		}
		if !errors.Is(err, ErrConflict) {
			return Timeline{}, err
		}
		if tl, err = c.load(ctx); err != nil {
			return Timeline{}, err
		}
		c.install(tl)
	}
	return Timeline{}, fmt.Errorf("worldtime: world %q changed concurrently 8 times: %w", c.world, ErrConflict)
}

// Pause stops game time now (game timers freeze with it).
func (c *Clock) Pause(ctx context.Context) error {
	_, err := c.Apply(ctx, Change{Kind: ChangePause})
	return err
}

// Resume lets game time run again at its scale.
func (c *Clock) Resume(ctx context.Context) error {
	_, err := c.Apply(ctx, Change{Kind: ChangeResume})
	return err
}

// SetScale changes the speed now; game time stays continuous.
func (c *Clock) SetScale(ctx context.Context, s Scale) error {
	_, err := c.Apply(ctx, Change{Kind: ChangeScale, Scale: s})
	return err
}

// SetRealSecondsPerGameHour is SetScale in the original system's unit
// (UE's SetTimeScale(RealSecondsPerGameHour)).
func (c *Clock) SetRealSecondsPerGameHour(ctx context.Context, s float64) error {
	sc, err := RealSecondsPerGameHour(s)
	if err != nil {
		return err
	}
	return c.SetScale(ctx, sc)
}

// Skip jumps game time forward by the game duration d; every boundary
// crossed is delivered, marked Skipped, under Options.Coalesce.
func (c *Clock) Skip(ctx context.Context, d time.Duration) error {
	_, err := c.Apply(ctx, Change{Kind: ChangeSkip, By: d})
	return err
}

// Set sets game time to hour:minute on day (day ≥ 1, hour 0–23, minute
// 0–59), like the original's set_time. Forward, it acts as a skip;
// backward, it delivers one EventSetBack.
func (c *Clock) Set(ctx context.Context, day, hour, minute int) error {
	g, err := Calendar{}.At(day, hour, minute)
	if err != nil {
		return err
	}
	_, err = c.Apply(ctx, Change{Kind: ChangeSet, To: g})
	return err
}

// Refresh reloads the timeline from the store now (the clock also does
// so every Options.Refresh).
func (c *Clock) Refresh(ctx context.Context) error {
	if c.isClosed() {
		return ErrClosed
	}
	tl, err := c.load(ctx)
	if err != nil {
		return err
	}
	c.install(tl)
	return nil
}

// Observe registers fn to receive the clock's events in order, on the
// clock's goroutine, interleaved with timer callbacks by game time. fn
// must not block for long. The returned func unregisters it.
func (c *Clock) Observe(fn func(Event)) (stop func()) {
	o := &observer{fn: fn}
	c.mu.Lock()
	c.observers = append(c.observers[:len(c.observers):len(c.observers)], o)
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		obs := make([]*observer, 0, len(c.observers))
		for _, x := range c.observers {
			if x != o {
				obs = append(obs, x)
			}
		}
		c.observers = obs
	}
}

// AtGame schedules fn to run once when game time reaches at (at once, on
// the clock's goroutine, if it already has). Timers due at the same
// instant run in the order they were scheduled, after that instant's
// events. A skip past them runs them, in order.
func (c *Clock) AtGame(at Instant, fn func(due Instant)) (TimerID, error) {
	return c.schedule(at, 0, fn)
}

// After schedules fn to run once after the game duration d from now.
func (c *Clock) After(d time.Duration, fn func(due Instant)) (TimerID, error) {
	return c.schedule(c.Now().Instant.Add(d), 0, fn)
}

// Every schedules fn at first and then every game interval (≥ 1 µs) until
// cancelled. Pausing freezes it; a scale change re-maps it; a skip runs
// every occurrence it crosses, in order (each with its own due time).
func (c *Clock) Every(first Instant, every time.Duration, fn func(due Instant)) (TimerID, error) {
	if every < time.Microsecond {
		return 0, invalid("timer interval", "%v is shorter than 1µs of game time", every)
	}
	return c.schedule(first, int64(every/time.Microsecond), fn)
}

func (c *Clock) schedule(at Instant, every int64, fn func(Instant)) (TimerID, error) {
	if fn == nil {
		return 0, invalid("timer", "nil callback")
	}
	if at < 0 {
		return 0, invalid("timer", "due time %d is negative", at)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, ErrClosed
	}
	if c.timers.len() >= c.opts.MaxTimers {
		c.mu.Unlock()
		return 0, ErrTooManyTimers
	}
	head, ok := c.timers.peek() // a lower bound when far ahead
	id := c.timers.add(at, every, fn)
	c.mu.Unlock()
	if !ok || at < head {
		c.poke()
	}
	return id, nil
}

// Cancel stops a timer; it reports whether the timer was pending.
func (c *Clock) Cancel(id TimerID) bool {
	c.mu.Lock()
	ok := c.timers.cancel(id)
	c.mu.Unlock()
	if ok {
		c.timersCancelled.Add(1)
	}
	return ok
}

func (c *Clock) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Close stops the clock's goroutine and waits for it; pending timers are
// dropped and no callback runs after Close returns. Close must not be
// called from a timer callback or an observer (it would wait for itself).
// It does not close the Store or the Bus. Later calls return ErrClosed.
func (c *Clock) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.closed = true
	c.mu.Unlock()
	c.stopping.Store(true)
	c.cancel()
	<-c.done
	if c.watchDone != nil {
		<-c.watchDone
	}
	// Wait out a Tick running callbacks on another goroutine (a manual
	// clock's game loop); a later Tick sees procDone and does nothing.
	c.procMu.Lock()
	c.procDone = true
	c.procMu.Unlock()
	return nil
}

// Tick delivers, on the calling goroutine, every event and timer due up
// to now, as the clock's goroutine otherwise does. It is how a clock with
// Options.Manual advances; on other clocks it is harmless but rarely
// useful. Ticks are serialized with each other and with the goroutine.
func (c *Clock) Tick() error {
	if c.isClosed() {
		return ErrClosed
	}
	c.procMu.Lock()
	defer c.procMu.Unlock()
	if c.procDone { // Close ran while this Tick waited
		return ErrClosed
	}
	c.process(c.realNow())
	return nil
}

// Stats is a snapshot of a clock's counters, a plain value.
type Stats struct {
	World    string
	Version  int64 // timeline version in view
	Segments int   // segments in the timeline in view
	// TimersPending counts scheduled timers; TimersFired counts
	// callbacks run (each firing of a periodic timer counts).
	TimersPending   int
	TimersFired     int64
	TimersCancelled int64
	// TimerBytes estimates the memory the pending timers take, excluding
	// their callbacks.
	TimerBytes int64
	// EventsEmitted counts events delivered to observers (and the bus);
	// EventsCoalesced counts skipped boundaries dropped by CoalesceLatest.
	EventsEmitted   int64
	EventsCoalesced int64
	Published       int64
	PublishErrors   int64
	// Store round trips: loads and swaps (conflicts and errors included).
	StoreLoads     int64
	StoreSwaps     int64
	StoreConflicts int64
	StoreErrors    int64
}

// Stats returns a snapshot of the clock's counters.
func (c *Clock) Stats() Stats {
	tl := &c.view.Load().tl
	c.mu.Lock()
	pending, bytes := c.timers.len(), c.timers.bytes()
	c.mu.Unlock()
	return Stats{
		World: c.world, Version: tl.Version, Segments: len(tl.Segments),
		TimersPending: pending, TimersFired: c.timersFired.Load(), TimersCancelled: c.timersCancelled.Load(),
		TimerBytes:    bytes,
		EventsEmitted: c.eventsEmitted.Load(), EventsCoalesced: c.eventsCoalesced.Load(),
		Published: c.published.Load(), PublishErrors: c.publishErrors.Load(),
		StoreLoads: c.storeLoads.Load(), StoreSwaps: c.storeSwaps.Load(),
		StoreConflicts: c.storeConflicts.Load(), StoreErrors: c.storeErrors.Load(),
	}
}

// watch runs the store's Watch until Close, restarting it (after a pause)
// when it fails; polling covers the gaps.
func (c *Clock) watch(w Watcher) {
	defer close(c.watchDone)
	for c.ctx.Err() == nil {
		err := w.Watch(c.ctx, c.world, func() {
			c.reload.Store(true)
			c.poke()
		})
		if c.ctx.Err() != nil {
			return
		}
		c.log.Warn("worldtime: watching the store failed; polling only until it recovers", "world", c.world, "err", err)
		t := time.NewTimer(c.opts.Refresh)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// run is the clock's goroutine: it sleeps until the next boundary or timer
// (computed from the timeline), a change, or the next store refresh.
func (c *Clock) run() {
	defer close(c.done)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	nextRefresh := c.realNow() + int64(c.opts.Refresh)
	for {
		now := c.realNow()
		if !c.opts.DisableRefresh && (now >= nextRefresh || c.reload.Swap(false)) {
			ctx, cancel := context.WithTimeout(c.ctx, c.opts.Refresh)
			if tl, err := c.load(ctx); err == nil {
				c.install(tl)
			} else if c.ctx.Err() == nil {
				c.log.Warn("worldtime: refreshing the timeline failed", "world", c.world, "err", err)
			}
			cancel()
			now = c.realNow()
			nextRefresh = now + int64(c.opts.Refresh)
		}
		c.procMu.Lock()
		c.process(now)
		wait := c.nextWake(now)
		c.procMu.Unlock()
		if c.ctx.Err() != nil {
			return
		}
		if !c.opts.DisableRefresh {
			wait = min(wait, nextRefresh-now)
		}
		t.Reset(time.Duration(max(wait, 0)))
		select {
		case <-c.ctx.Done():
			return
		case <-c.wake:
		case <-t.C:
		}
	}
}

// nextWake returns real nanoseconds from now until the next thing the
// runner must do: the next boundary or timer, or the next scheduled
// segment.
func (c *Clock) nextWake(now int64) int64 {
	tl := &c.view.Load().tl
	i := tl.segmentAt(now)
	wait := int64(math.MaxInt64)
	if i+1 < len(tl.Segments) {
		wait = tl.Segments[i+1].RealEpoch.UnixNano() - now
	}
	g, _ := c.bnd.next(c.lastGame)
	c.mu.Lock()
	if due, ok := c.timers.peek(); ok && due < g {
		g = due
	}
	c.mu.Unlock()
	if r, ok := tl.Segments[i].realAt(g); ok {
		wait = min(wait, r-now)
	}
	return wait
}

// process delivers everything between the last processed instant and
// real instant now: continuous stretches, then each new segment's jump.
func (c *Clock) process(now int64) {
	tl := &c.view.Load().tl
	g := c.lastGame
	for i, s := range tl.Segments {
		if s.Version <= c.passedVersion {
			continue
		}
		at := max(s.RealEpoch.UnixNano(), c.lastReal)
		if at > now {
			break
		}
		if i > 0 {
			if end := tl.Segments[i-1].gameAt(at); end > g {
				c.span(g, end, false, tl.Segments[i-1].Version)
				g = end
			}
		}
		switch target := s.gameAt(at); {
		case target > g:
			c.span(g, target, s.Kind == ChangeSkip || s.Kind == ChangeSet, s.Version)
			g = target
		case target < g && s.Kind == ChangeSet:
			c.emit(Event{World: c.world, Kind: EventSetBack, Time: c.cal.at(target), FromPhase: c.cal.at(g).Phase, From: g, Version: s.Version})
			g = target
		}
		c.lastReal, c.passedVersion = at, s.Version
		if c.ctx.Err() != nil {
			return
		}
	}
	cur := &tl.Segments[tl.segmentAt(now)]
	if end := cur.gameAt(now); end > g {
		c.span(g, end, false, cur.Version)
		g = end
	}
	// Timers scheduled at or before the current game time.
	c.span(g, g, false, cur.Version)
	c.lastGame, c.lastReal = g, max(c.lastReal, now)
	c.flush()
}

// span delivers the boundaries in (a, b] and the timers due by b, merged
// in game-time order (boundaries first at equal instants).
func (c *Clock) span(a, b Instant, skipped bool, version int64) {
	var coalesced []Event
	if skipped && c.opts.Coalesce == CoalesceLatest {
		coalesced = c.latest(a, b, version)
	}
	for c.ctx.Err() == nil {
		var nb Instant
		var kinds uint8
		if coalesced != nil {
			nb = MaxInstant
			if len(coalesced) > 0 {
				nb = coalesced[0].Time.Instant
			}
		} else if a < b {
			nb, kinds = c.bnd.next(a)
		} else {
			nb = MaxInstant
		}
		// Timers due before the next boundary (and by b).
		limit := min(nb-1, b)
		for {
			c.mu.Lock()
			fn, due, ok := c.timers.popDue(limit)
			c.mu.Unlock()
			if !ok {
				break
			}
			c.timersFired.Add(1)
			fn(due)
			if c.stopping.Load() {
				return
			}
		}
		if nb > b {
			return
		}
		if coalesced != nil {
			c.emit(coalesced[0])
			coalesced = coalesced[1:]
		} else {
			c.boundary(nb, kinds, skipped, version)
		}
		a = nb
	}
}

// latest returns the last day, phase and hour boundary in (a, b], in
// order, and counts the rest as coalesced.
func (c *Clock) latest(a, b Instant, version int64) []Event {
	out := []Event{}
	var total int64
	for _, k := range []EventKind{EventDay, EventPhase, EventHour} {
		last, n := c.bnd.lastOf(k, a, b)
		if n == 0 {
			continue
		}
		total += n
		ev := Event{World: c.world, Kind: k, Time: c.cal.at(last), Skipped: true, Version: version}
		if k == EventPhase {
			ev.FromPhase = c.cal.at(last - 1).Phase
		}
		out = append(out, ev)
	}
	// Order by instant, then kind (day, phase, hour): stable insertion.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Time.Instant < out[j-1].Time.Instant; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	c.eventsCoalesced.Add(total - int64(len(out)))
	return out
}

func (c *Clock) boundary(g Instant, kinds uint8, skipped bool, version int64) {
	t := c.cal.at(g)
	for _, k := range []EventKind{EventDay, EventPhase, EventHour} {
		if kinds&(1<<k) == 0 {
			continue
		}
		ev := Event{World: c.world, Kind: k, Time: t, Skipped: skipped, Version: version}
		if k == EventPhase {
			ev.FromPhase = c.cal.at(g - 1).Phase
		}
		c.emit(ev)
	}
}

func (c *Clock) emit(ev Event) {
	c.eventsEmitted.Add(1)
	c.mu.Lock()
	obs := c.observers
	c.mu.Unlock()
	for _, o := range obs {
		o.fn(ev)
	}
	if c.opts.Bus != nil {
		c.enqueue(ev)
	}
}

func (c *Clock) enqueue(ev Event) {
	t := ev.Time
	var topic string
	var v any
	switch ev.Kind {
	case EventPhase:
		topic, v = TopicPhase, PhaseChanged{Version: 1, World: ev.World, From: ev.FromPhase, To: t.Phase, Day: t.Day, Hour: t.Hour, Minute: t.Minute, Clock: t.Clock(), GameTime: int64(t.Instant), Skipped: ev.Skipped, TimelineVersion: ev.Version}
	case EventHour:
		topic, v = TopicHour, HourChanged{Version: 1, World: ev.World, Day: t.Day, Hour: t.Hour, Phase: t.Phase, GameTime: int64(t.Instant), Skipped: ev.Skipped, TimelineVersion: ev.Version}
	case EventDay:
		topic, v = TopicDay, DayChanged{Version: 1, World: ev.World, Day: t.Day, Weekday: t.Weekday, Year: t.Year, DayOfYear: t.DayOfYear, GameTime: int64(t.Instant), Skipped: ev.Skipped, TimelineVersion: ev.Version}
	case EventSetBack:
		topic, v = TopicSet, TimeSet{Version: 1, World: ev.World, From: int64(ev.From), To: int64(t.Instant), Day: t.Day, Clock: t.Clock(), Phase: t.Phase, TimelineVersion: ev.Version}
	}
	payload, typ, err := eventbus.Encode(v)
	if err != nil {
		c.publishErrors.Add(1)
		return
	}
	c.outbox = append(c.outbox, eventbus.Event{
		ID: eventID(ev, topic), Topic: topic, Type: typ, Key: ev.World, Payload: payload,
	})
}

// eventID derives a bus event ID from what the event is, so every server
// publishes the same ID for the same boundary: 48 bits of game
// milliseconds (sortable within a world), then a hash of world, topic,
// game instant and timeline version.
func eventID(ev Event, topic string) eventbus.ID {
	var id eventbus.ID
	ms := uint64(ev.Time.Instant) / 1000
	for i := range 6 {
		id[i] = byte(ms >> (40 - 8*i))
	}
	h := fnv.New128a()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00%d", ev.World, topic, ev.Time.Instant, ev.Version)
	sum := h.Sum(nil)
	copy(id[6:], sum[:10])
	return id
}

func (c *Clock) flush() {
	if len(c.outbox) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.PublishTimeout)
	err := c.opts.Bus.PublishBatch(ctx, c.outbox)
	cancel()
	if err != nil {
		c.publishErrors.Add(int64(len(c.outbox)))
		c.log.Warn("worldtime: publishing events failed", "world", c.world, "events", len(c.outbox), "err", err)
	} else {
		c.published.Add(int64(len(c.outbox)))
	}
	c.outbox = nil
}
