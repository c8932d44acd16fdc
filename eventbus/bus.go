package eventbus

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bodybroker/sdk/latency"
)

// Bus publishes events and runs subscriptions. It is safe for concurrent
// use. Create one with New; stop it with Shutdown or Close.
type Bus struct {
	opts Options
	tr   Transport // Options.Transport, or mem
	mem  *memory   // the in-memory transport when Options.Transport is nil
	feat Features
	ids  *idGen
	// ownClock: Options.Now was given (mono reads it instead of time.Since).
	ownClock bool

	topics sync.Map // topic → *topicState

	mu     sync.Mutex // guards subs and topic creation
	subs   map[uint64]*Subscription
	nextID uint64

	state    atomic.Int32
	stopOnce sync.Once
	stopErr  error           // what Shutdown returns
	closeErr error           // what Close returns
	stopped  []*Subscription // the subscriptions stop took down
	abort    chan struct{}   // closed by Close, also during a Shutdown
	abortNow sync.Once

	// Counters of subscriptions that have finished, so that bus-wide
	// totals do not shrink when a subscription closes.
	retiredMu  sync.Mutex
	retired    SubscriptionStats
	retiredLat latency.Histogram
	// Subscriptions removed from subs whose workers have not finished:
	// Stats still counts them (retiredMu; lock order b.mu, then retiredMu).
	closing map[*Subscription]struct{}
}

// retire folds a finished subscription's counters into the bus totals.
func (b *Bus) retire(s *Subscription) {
	ss := s.Stats()
	b.retiredMu.Lock()
	s.retired = true
	delete(b.closing, s)
	r := &b.retired
	r.Delivered += ss.Delivered
	r.Failed += ss.Failed
	r.Retried += ss.Retried
	r.DeadLettered += ss.DeadLettered
	r.Panics += ss.Panics
	r.Goexits += ss.Goexits
	r.Duplicates += ss.Duplicates
	r.Dropped.add(ss.Dropped)
	if h := s.lat.Load(); h != nil {
		b.retiredLat.Merge(h)
	}
	b.retiredMu.Unlock()
}

const (
	stateOpen int32 = iota
	stateDraining
	stateClosed
)

// topicState is everything the Bus keeps per topic.
type topicState struct {
	name      string
	published atomic.Uint64
	_         [56]byte // keep the publisher's counter off the workers' line

	delivered    atomic.Uint64
	failed       atomic.Uint64
	retried      atomic.Uint64
	deadLettered atomic.Uint64
	drops        dropCounters
	lat          atomic.Pointer[latency.Histogram]
	// mem caches the in-memory transport's state for this topic, so that
	// an in-memory publish looks the topic up once, not twice.
	mem atomic.Pointer[memTopic]
}

func (ts *topicState) latency() *latency.Histogram {
	if ts == nil {
		return &discardHist
	}
	if h := ts.lat.Load(); h != nil {
		return h
	}
	h := new(latency.Histogram)
	if !ts.lat.CompareAndSwap(nil, h) {
		h = ts.lat.Load()
	}
	return h
}

var discardHist latency.Histogram

// New returns a Bus. The zero Options give an in-memory bus. It returns an
// *OptionError (errors.Is ErrInvalidOptions) naming the first field it
// refuses: a negative size, or a limit set beside the flag that disables it.
// New starts no goroutines; subscriptions start their workers.
func New(opts Options) (*Bus, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	ownClock := opts.Now != nil
	opts = opts.withDefaults()
	b := &Bus{ownClock: ownClock, opts: opts, tr: opts.Transport, ids: newIDGen(), subs: make(map[uint64]*Subscription), abort: make(chan struct{}),
		closing: make(map[*Subscription]struct{})}
	if b.tr == nil {
		b.mem = newMemory(opts.HistorySize)
		b.tr = b.mem
	}
	b.feat = b.tr.Features()
	return b, nil
}

// mono returns the bus clock's reading as nanoseconds since epoch: the
// publish stamps carried in queue items, latency and dedup windows. With the
// default clock it reads only the monotonic clock (time.Since), which is
// cheaper than time.Now on the per-delivery path.
func (b *Bus) mono() int64 {
	if b.ownClock {
		return int64(b.opts.Now().Sub(epoch))
	}
	return int64(time.Since(epoch))
}

// Features reports the guarantees of the Bus's transport.
func (b *Bus) Features() Features { return b.feat }

// Source returns the Source stamped on this Bus's events.
func (b *Bus) Source() string { return b.opts.Source }

func (b *Bus) report(err error) {
	switch {
	case err == nil:
	case b.opts.OnError != nil:
		b.opts.OnError(err)
	default:
		b.opts.Logger.Warn("eventbus: "+err.Error(), "source", b.opts.Source)
	}
}

// topicState returns the state for a topic known to be valid (received from
// a transport), creating it if needed.
func (b *Bus) topicState(topic string) *topicState {
	if v, ok := b.topics.Load(topic); ok {
		return v.(*topicState)
	}
	ts, _ := b.createTopic(topic)
	return ts
}

// topicFor validates topic and returns its state.
func (b *Bus) topicFor(topic string) (*topicState, error) {
	if v, ok := b.topics.Load(topic); ok {
		return v.(*topicState), nil
	}
	if err := ValidateTopic(topic); err != nil {
		return nil, err
	}
	return b.createTopic(topic)
}

func (b *Bus) createTopic(topic string) (*topicState, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if v, ok := b.topics.Load(topic); ok {
		return v.(*topicState), nil
	}
	ts := &topicState{name: topic}
	b.topics.Store(topic, ts)
	return ts, nil
}

func (b *Bus) sortedSubsLocked() []*Subscription {
	out := make([]*Subscription, 0, len(b.subs))
	for _, s := range b.subs {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, c *Subscription) int { return int(a.id) - int(c.id) })
	return out
}

// Publish publishes ev on topic. It sets ev.Topic, and ev.ID, ev.Time and
// ev.Source where they are zero.
//
// With the in-memory transport, Publish hands the event to every matching
// subscription's queue before it returns, applying each one's overflow
// policy; only the Block policy can make it wait, bounded by ctx and MaxBlock.
// It returns ctx's error if ctx ended while it waited (the event may have
// reached other subscribers). With a remote transport, Publish returns once
// the transport holds the event (see Transport.Publish).
//
// Publish does not copy ev.Payload or ev.Headers: they belong to the bus
// from now on.
func (b *Bus) Publish(ctx context.Context, topic string, ev Event) error {
	return b.publish(ctx, topic, &ev, nil)
}

// PublishBatch publishes several events, each on its own ev.Topic, in order.
// On a remote transport they travel together (one pipelined round trip for
// Redis), which is how a single goroutine reaches high throughput.
func (b *Bus) PublishBatch(ctx context.Context, evs []Event) error {
	if b.mem != nil { // one at a time: each waits under its subscribers' policies
		for i := range evs {
			if err := b.publish(ctx, evs[i].Topic, &evs[i], nil); err != nil {
				return err
			}
		}
		return nil
	}
	if b.state.Load() != stateOpen {
		return ErrClosed
	}
	now := b.opts.Now()
	tss := make([]*topicState, len(evs))
	for i := range evs {
		ts, err := b.check(evs[i].Topic, &evs[i])
		if err != nil {
			return err
		}
		tss[i] = ts
		b.stamp(&evs[i], ts, now)
	}
	if err := b.tr.Publish(ctx, evs); err != nil {
		return err
	}
	for _, ts := range tss {
		ts.published.Add(1)
	}
	return nil
}

func (b *Bus) check(topic string, ev *Event) (*topicState, error) {
	ts, err := b.topicFor(topic)
	if err != nil {
		return nil, err
	}
	if b.opts.MaxPayload > 0 && len(ev.Payload) > b.opts.MaxPayload {
		return nil, &PayloadTooLargeError{Topic: topic, Size: len(ev.Payload), Limit: b.opts.MaxPayload}
	}
	if limit := b.opts.MaxEventBytes; limit > 0 {
		if n := b.eventBytes(topic, ev, limit); n > limit {
			return nil, &EventTooLargeError{Topic: topic, Size: n, Limit: limit}
		}
	}
	return ts, nil
}

// eventBytes returns the size of ev's envelope as Options.MaxEventBytes
// counts it. It stops adding headers once the total is over limit, so a map
// of a million headers costs no more than the limit's worth.
func (b *Bus) eventBytes(topic string, ev *Event, limit int) int {
	src := ev.Source
	if src == "" {
		src = b.opts.Source
	}
	n := len(ev.Payload) + len(topic) + len(ev.Type) + len(src) + len(ev.Key)
	for k, v := range ev.Headers {
		if n > limit {
			break
		}
		n += len(k) + len(v)
	}
	return n
}

func (b *Bus) stamp(ev *Event, ts *topicState, now time.Time) {
	ev.Topic = ts.name
	if ev.ID.IsZero() {
		ev.ID = b.ids.next(now)
	}
	if ev.Time.IsZero() {
		ev.Time = now
	}
	if ev.Source == "" {
		ev.Source = b.opts.Source
	}
}

// publish publishes ev; from is the subscription whose worker dead-letters
// it, or nil for a caller's Publish.
func (b *Bus) publish(ctx context.Context, topic string, ev *Event, from *Subscription) error {
	if st := b.state.Load(); st != stateOpen && !(from != nil && st == stateDraining) {
		return ErrClosed
	}
	ts, err := b.check(topic, ev)
	if err != nil {
		return err
	}
	now := b.opts.Now()
	if b.mem != nil {
		// In memory the item goes straight to the subscribers' queues,
		// without the []Event that Transport.Publish takes.
		it := item{ev: *ev, pub: int64(now.Sub(epoch)), ts: ts}
		b.stamp(&it.ev, ts, now)
		ts.published.Add(1)
		mt := ts.mem.Load()
		if mt == nil {
			mt = b.mem.topic(ts.name)
			ts.mem.Store(mt)
		}
		return b.mem.deliver(ctx, mt, &it, from)
	}
	b.stamp(ev, ts, now)
	if err := b.tr.Publish(ctx, []Event{*ev}); err != nil {
		return err
	}
	ts.published.Add(1)
	return nil
}

// History returns up to limit retained events of topic at or after from,
// oldest first; limit ≤ 0 returns all retained. The zero Position means the
// oldest retained event. The in-memory transport keeps Options.HistorySize
// events per topic; Redis Streams keep what MAXLEN allows; Redis pub/sub
// keeps none (ErrNotSupported).
func (b *Bus) History(ctx context.Context, topic string, from Position, limit int) ([]Event, error) {
	if err := ValidateTopic(topic); err != nil {
		return nil, err
	}
	if b.state.Load() == stateClosed {
		return nil, ErrClosed
	}
	return b.tr.History(ctx, topic, from, limit)
}

// Subscribe registers h for events whose topic matches pattern: exact, with
// '*' for one segment, or ending in '>' for one or more segments
// ("world.time.*", "npc.>"). Each subscription has its own queue(s) and
// worker(s); see SubscribeOptions for overflow, concurrency, retries, dead
// letters, dedup and replay. ctx bounds the set-up only; the subscription
// lives until Close or the bus's Shutdown/Close.
func (b *Bus) Subscribe(ctx context.Context, pattern string, h Handler, opts SubscribeOptions) (*Subscription, error) {
	if h == nil {
		return nil, errors.New("eventbus: nil handler")
	}
	pt, err := parsePattern(pattern)
	if err != nil {
		return nil, err
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	b.mu.Lock()
	// stop changes the state under mu before it lists the subscriptions to
	// close, so one registered here is either refused or on that list.
	if b.state.Load() != stateOpen {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	b.nextID++
	s := newSubscription(b, b.nextID, pt, h, opts)
	b.subs[s.id] = s
	b.mu.Unlock()
	ts, err := b.tr.Subscribe(ctx, SubscribeRequest{
		Pattern: pattern, Name: opts.Name, From: opts.From,
		Buffer: opts.QueueSize * opts.Concurrency,
	}, s)
	if err != nil {
		// Close it as any subscription closes, and start its workers on
		// the closed queues: they exit at once, the last one retires it
		// and closes done, so a Close or Shutdown that already listed it
		// does not wait for it forever.
		_ = s.Close()
		s.start()
		return nil, err
	}
	s.tsub.Store(&tsubRef{ts})
	s.start()
	if s.removed.Load() || b.state.Load() != stateOpen { // raced with Shutdown
		_ = s.Close()
		_ = ts.Close()
		return nil, ErrClosed
	}
	return s, nil
}

// removeSub unregisters s; its queues are already closed.
func (b *Bus) removeSub(s *Subscription) error {
	b.mu.Lock()
	if _, ok := b.subs[s.id]; !ok {
		b.mu.Unlock()
		return nil
	}
	delete(b.subs, s.id)
	b.retiredMu.Lock()
	if !s.retired {
		b.closing[s] = struct{}{}
	}
	b.retiredMu.Unlock()
	b.mu.Unlock()
	s.removed.Store(true)
	if ts := s.tsub.Load(); ts != nil {
		return ts.Close()
	}
	return nil
}

// Shutdown stops the bus gracefully: Publish starts returning ErrClosed,
// subscriptions stop taking new events and their workers finish what is
// queued. If ctx ends first, running handlers are cancelled, what is still
// queued is abandoned (dropped in memory; left for redelivery on Redis
// Streams) and Shutdown returns ctx's error without waiting further. A Close
// during Shutdown does the same at once, and Shutdown then returns ErrClosed.
// The transport is closed last. Later calls return the first call's result.
func (b *Bus) Shutdown(ctx context.Context) error {
	b.stop(ctx, false)
	return b.stopErr
}

// Close stops the bus at once: running handlers are cancelled and Close
// waits for them to return; queued events are abandoned as in Shutdown.
// Close interrupts a Shutdown in progress. It is idempotent.
func (b *Bus) Close() error {
	b.abortNow.Do(func() { close(b.abort) })
	b.stop(context.Background(), true)
	for _, s := range b.stopped {
		<-s.done
	}
	return b.closeErr
}

func (b *Bus) stop(ctx context.Context, immediate bool) {
	b.stopOnce.Do(func() {
		b.mu.Lock()
		b.state.Store(stateDraining)
		subs := b.sortedSubsLocked()
		b.mu.Unlock()
		b.stopped = subs
		if immediate {
			for _, s := range subs {
				_ = s.Close()
			}
		} else {
			for _, s := range subs {
				s.drain()
			}
		}
		var err error
	wait:
		for _, s := range subs {
			select {
			case <-s.done:
			case <-ctx.Done():
				err = ctx.Err()
				break wait
			case <-b.abort:
				err = ErrClosed
				break wait
			}
		}
		if err != nil {
			for _, s := range subs {
				s.abort()
			}
		}
		if errors.Is(err, ErrClosed) { // Close waits for the handlers
			for _, s := range subs {
				<-s.done
			}
		}
		b.state.Store(stateClosed)
		b.closeErr = b.tr.Close()
		b.stopErr = err
		if b.stopErr == nil {
			b.stopErr = b.closeErr
		}
	})
}

// Stats returns a point-in-time view of the bus's counters. Bus-wide totals
// include subscriptions that have closed; Subscriptions lists the open ones.
func (b *Bus) Stats() Stats {
	st := Stats{Topics: make(map[string]TopicStats)}
	var all latency.Histogram
	b.topics.Range(func(k, v any) bool {
		ts := v.(*topicState)
		t := TopicStats{
			Published:    ts.published.Load(),
			Delivered:    ts.delivered.Load(),
			Failed:       ts.failed.Load(),
			Retried:      ts.retried.Load(),
			DeadLettered: ts.deadLettered.Load(),
			Dropped:      ts.drops.snapshot(),
		}
		if h := ts.lat.Load(); h != nil {
			t.Latency = h.Summary()
		}
		st.Topics[k.(string)] = t
		st.Published += t.Published
		return true
	})
	// One consistent view: each subscription is open, closing or retired.
	b.mu.Lock()
	subs := b.sortedSubsLocked()
	open := len(subs)
	b.retiredMu.Lock()
	for s := range b.closing {
		subs = append(subs, s)
	}
	r := b.retired
	all.Merge(&b.retiredLat)
	b.retiredMu.Unlock()
	b.mu.Unlock()
	st.Delivered, st.Failed, st.Retried, st.DeadLettered = r.Delivered, r.Failed, r.Retried, r.DeadLettered
	st.Panics, st.Goexits, st.Duplicates, st.Dropped = r.Panics, r.Goexits, r.Duplicates, r.Dropped
	for i, s := range subs {
		ss := s.Stats()
		if i < open {
			st.Subscriptions = append(st.Subscriptions, ss)
		}
		st.Delivered += ss.Delivered
		st.Failed += ss.Failed
		st.Retried += ss.Retried
		st.DeadLettered += ss.DeadLettered
		st.Panics += ss.Panics
		st.Goexits += ss.Goexits
		st.Duplicates += ss.Duplicates
		st.Dropped.add(ss.Dropped)
		if h := s.lat.Load(); h != nil {
			all.Merge(h)
		}
	}
	st.Latency = all.Summary()
	st.Transport = b.tr.Stats()
	return st
}
