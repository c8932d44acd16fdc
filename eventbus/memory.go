package eventbus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// MemoryFeatures returns the guarantees of the in-process transport. Each
// call returns a fresh value: changing it changes nothing else.
func MemoryFeatures() Features {
	return Features{
		Name:                  "memory",
		History:               true,
		PublisherBackpressure: true,
	}
}

// memory is the in-process Transport that a Bus uses when Options.Transport
// is nil: per-topic history rings, and per-subscription queues fed directly
// in the publisher's goroutine.
//
// Besides the Transport methods it offers the Bus a fast path (deliver) that
// hands a stamped item to each matching subscription under its overflow
// policy (with MaxBlock, lagging and publisher pacing), without the copy into
// a []Event that Transport.Publish takes. Its subscriptions must be the
// Bus's own *Subscription sinks.
type memory struct {
	historySize int // 0: no history (History and From return ErrNotSupported)

	mu     sync.Mutex      // orders topic creation with subscription changes
	topics sync.Map        // topic → *memTopic
	subs   []*Subscription // sorted by id (mu)
	closed atomic.Bool
}

var _ Transport = (*memory)(nil)

// memTopic is what the in-memory transport keeps per topic. mu orders
// history appends with subscription changes, so a subscription that replays
// history never sees an event twice or misses one.
type memTopic struct {
	name  string
	mu    sync.Mutex
	subs  atomic.Pointer[[]*Subscription]
	hist  []Event
	hHead int
}

func newMemory(historySize int) *memory { return &memory{historySize: historySize} }

// topic returns the state of a topic, creating it with the subscriptions
// that match it.
func (m *memory) topic(name string) *memTopic {
	if v, ok := m.topics.Load(name); ok {
		return v.(*memTopic)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.topics.Load(name); ok {
		return v.(*memTopic)
	}
	mt := &memTopic{name: name}
	var subs []*Subscription
	for _, s := range m.subs {
		if s.pat.match(name) {
			subs = append(subs, s)
		}
	}
	mt.subs.Store(&subs)
	m.topics.Store(name, mt)
	return mt
}

// deliver records it in mt's history and queues it for every matching
// subscription; mt is m.topic(it.ev.Topic), which the caller may cache; from
// is the subscription whose worker dead-letters it (which must not wait for
// its own queue), or nil. It returns the first error other than ErrClosed
// (ctx's, when a Block subscriber made it wait).
func (m *memory) deliver(ctx context.Context, mt *memTopic, it *item, from *Subscription) error {
	mt.mu.Lock()
	if m.historySize > 0 {
		mt.appendHistory(&it.ev, m.historySize)
	}
	subs := mt.subs.Load()
	mt.mu.Unlock()
	var first error
	var hint yieldHint
	for _, s := range *subs {
		if s == from {
			s.offerSelf(it)
			continue
		}
		if err := s.offer(ctx, s.pick(&it.ev), it, false, &hint); err != nil && first == nil && !errors.Is(err, ErrClosed) {
			first = err
		}
	}
	switch {
	case hint.lagging != nil:
		// Soft backpressure: a worker is falling behind. Wait until it is
		// back under softLimit before queueing more: the queue, and so
		// publish→deliver latency, stays short when a publisher outruns a
		// busy subscriber, and nothing is dropped. A worker stuck in a slow
		// handler call takes nothing; the publisher then stops waiting and
		// the queue's room absorbs the burst.
		hint.lagging.softWait(ctx)
	case hint.woke:
		// The woken worker sits in this processor's run queue: let it run
		// now, as a channel hand-off would, instead of waiting for another
		// processor to steal it.
		runtime.Gosched()
	}
	return first
}

// Publish implements Transport for callers other than the Bus's fast path:
// each event is recorded and handed to the matching subscriptions' Deliver,
// which waits for room without a time limit.
func (m *memory) Publish(ctx context.Context, evs []Event) error {
	for i := range evs {
		mt := m.topic(evs[i].Topic)
		mt.mu.Lock()
		if m.historySize > 0 {
			mt.appendHistory(&evs[i], m.historySize)
		}
		subs := mt.subs.Load()
		mt.mu.Unlock()
		for _, s := range *subs {
			if err := s.Deliver(ctx, &Delivery{Event: evs[i]}); err != nil && !errors.Is(err, ErrClosed) {
				return err
			}
		}
	}
	return nil
}

// Subscribe implements Transport. sink must be a *Subscription of the Bus
// that owns this transport. Replayed history is handed to the
// subscription's workers before anything live, sorted by ID across topics.
func (m *memory) Subscribe(_ context.Context, req SubscribeRequest, sink Sink) (TransportSubscription, error) {
	s, ok := sink.(*Subscription)
	if !ok {
		return nil, fmt.Errorf("eventbus: the in-memory transport delivers only to its own Bus (got %T)", sink)
	}
	if !req.From.IsZero() && m.historySize == 0 {
		return nil, ErrNotSupported
	}
	// Register with every matching topic, snapshotting history under the
	// same lock as publishes append to it.
	var replay []Event
	m.mu.Lock()
	at, _ := slices.BinarySearchFunc(m.subs, s.id, func(o *Subscription, id uint64) int { return cmp.Compare(o.id, id) })
	m.subs = slices.Insert(m.subs, at, s)
	m.topics.Range(func(_, v any) bool {
		mt := v.(*memTopic)
		if !s.pat.match(mt.name) {
			return true
		}
		mt.mu.Lock()
		if !req.From.IsZero() {
			replay = append(replay, mt.historyLocked(req.From, 0)...)
		}
		old := *mt.subs.Load()
		subs := append(slices.Clip(old), s)
		mt.subs.Store(&subs)
		mt.mu.Unlock()
		return true
	})
	m.mu.Unlock()
	if len(replay) > 0 {
		slices.SortStableFunc(replay, func(a, c Event) int { return a.ID.Compare(c.ID) })
		s.preload(replay)
	}
	return memSub{m, s}, nil
}

// unsubscribe removes s from every topic.
func (m *memory) unsubscribe(s *Subscription) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := slices.Index(m.subs, s)
	if i < 0 {
		return
	}
	m.subs = slices.Delete(m.subs, i, i+1)
	m.topics.Range(func(_, v any) bool {
		mt := v.(*memTopic)
		if !s.pat.match(mt.name) {
			return true
		}
		mt.mu.Lock()
		old := *mt.subs.Load()
		subs := make([]*Subscription, 0, len(old))
		for _, o := range old {
			if o != s {
				subs = append(subs, o)
			}
		}
		mt.subs.Store(&subs)
		mt.mu.Unlock()
		return true
	})
}

// History implements Transport.
func (m *memory) History(_ context.Context, topic string, from Position, limit int) ([]Event, error) {
	if m.historySize == 0 {
		return nil, ErrNotSupported
	}
	v, ok := m.topics.Load(topic)
	if !ok {
		return nil, nil
	}
	mt := v.(*memTopic)
	mt.mu.Lock()
	defer mt.mu.Unlock()
	return mt.historyLocked(from, limit), nil
}

// Features implements Transport.
func (m *memory) Features() Features { return MemoryFeatures() }

// Stats implements Transport: the in-memory transport is connected until it
// is closed.
func (m *memory) Stats() TransportStats {
	return TransportStats{Name: "memory", Connected: !m.closed.Load()}
}

// Close implements Transport. The Bus has closed its subscriptions.
func (m *memory) Close() error {
	m.closed.Store(true)
	return nil
}

// memSub is the in-memory transport's side of one subscription.
type memSub struct {
	m *memory
	s *Subscription
}

// Ack implements TransportSubscription: nothing to acknowledge in memory.
func (memSub) Ack(string, string) {}

// Close implements TransportSubscription.
func (ms memSub) Close() error {
	ms.m.unsubscribe(ms.s)
	return nil
}

func (mt *memTopic) appendHistory(ev *Event, size int) {
	if len(mt.hist) < size {
		mt.hist = append(mt.hist, *ev)
		return
	}
	mt.hist[mt.hHead] = *ev
	mt.hHead++
	if mt.hHead == len(mt.hist) {
		mt.hHead = 0
	}
}

// historyLocked returns the retained events at or after from, oldest first;
// mt.mu is held.
func (mt *memTopic) historyLocked(from Position, limit int) []Event {
	n := len(mt.hist)
	at := func(i int) *Event { return &mt.hist[(mt.hHead+i)%n] }
	start := 0
	switch from.kind {
	case posAfterID:
		start = -1
		for i := n - 1; i >= 0; i-- {
			if at(i).ID == from.id {
				start = i + 1
				break
			}
		}
		if start < 0 { // not retained: everything that sorts after it
			start = n
			for i := 0; i < n; i++ {
				if from.Includes(at(i)) {
					start = i
					break
				}
			}
		}
	case posTime:
		start = n
		for i := 0; i < n; i++ {
			if from.Includes(at(i)) {
				start = i
				break
			}
		}
	}
	cnt := n - start
	if limit > 0 && cnt > limit {
		cnt = limit
	}
	out := make([]Event, 0, max(cnt, 0))
	for i := start; i < start+cnt; i++ {
		out = append(out, *at(i))
	}
	return out
}
