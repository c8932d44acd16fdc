package eventbus

import (
	"context"
	"errors"
	"hash/maphash"
	"maps"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bodybroker/sdk/latency"
)

// Handler handles one event. A nil error acknowledges it; an error makes the
// bus retry it (see Retry) and then move it to the dead-letter topic. ctx is
// cancelled when the subscription or the bus closes.
//
// ev's Payload and Headers are shared with other subscribers: read them, do
// not modify them.
type Handler func(ctx context.Context, ev Event) error

// Headers set on dead-lettered events.
const (
	HeaderDeadLetterError        = "deadletter-error"
	HeaderDeadLetterTopic        = "deadletter-topic"
	HeaderDeadLetterSubscription = "deadletter-subscription"
	HeaderDeadLetterAttempts     = "deadletter-attempts"
)

// Subscription is one handler registered on a pattern. Close removes exactly
// this subscription.
type Subscription struct {
	bus     *Bus
	id      uint64
	pat     *pattern
	handler Handler
	opts    SubscribeOptions
	workers []*worker
	seed    maphash.Seed
	tsub    atomic.Pointer[tsubRef] // set once the transport has subscribed
	removed atomic.Bool             // unregistered from the bus
	retired bool                    // counters folded into the bus totals (bus.retiredMu)

	ctx    context.Context // handlers' ctx
	cancel context.CancelFunc

	aborting  atomic.Bool // no new handler calls; abandon the rest
	closeOnce sync.Once
	closeErr  error
	running   atomic.Int32 // workers that have not finished; the last one closes done
	done      chan struct{}

	delivered    atomic.Uint64
	failed       atomic.Uint64
	retried      atomic.Uint64
	deadLettered atomic.Uint64
	panics       atomic.Uint64
	goexits      atomic.Uint64
	duplicates   atomic.Uint64
	drops        dropCounters
	lat          atomic.Pointer[latency.Histogram] // nil until the first delivery (22 KiB)
}

// latencyHist returns the subscription's latency histogram, creating it on first
// use so that an idle subscription does not carry one.
func (s *Subscription) latencyHist() *latency.Histogram {
	if h := s.lat.Load(); h != nil {
		return h
	}
	h := new(latency.Histogram)
	if !s.lat.CompareAndSwap(nil, h) {
		h = s.lat.Load()
	}
	return h
}

type tsubRef struct{ TransportSubscription }

// yieldHint is what a publish learned about the workers it fed.
type yieldHint struct {
	woke    bool   // a sleeping worker was woken
	lagging *queue // a worker with more than softLimit events queued
}

// worker is one of a subscription's workers. Everything it is in the middle
// of lives here rather than on its goroutine's stack, so that when a handler
// ends that goroutine with runtime.Goexit a new goroutine carries on exactly
// where it stopped (see Subscription.run).
type worker struct {
	q     *queue
	dedup *dedup

	pre   []item // replayed history, handled before the queue
	preAt int    // next pre item to handle

	it      item   // the item being handled (copied out of the lock-free ring)
	batch   []item // locked mode: items taken from the ring, being handled
	batchAt int    // next batch item to handle

	cur      *item // the item whose handler call is running, or nil
	attempt  int   // that call's attempt number
	goexited bool  // the call ended in runtime.Goexit
}

func newSubscription(b *Bus, id uint64, pat *pattern, h Handler, opts SubscribeOptions) *Subscription {
	s := &Subscription{
		bus: b, id: id, pat: pat, handler: h, opts: opts,
		seed: maphash.MakeSeed(), done: make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.workers = make([]*worker, opts.Concurrency)
	for i := range s.workers {
		w := &worker{q: newQueue(opts.QueueSize, opts.Overflow == DropOldest || opts.Overflow == KeepLatest)}
		if opts.DedupWindow > 0 {
			w.dedup = newDedup(opts.DedupWindow, opts.DedupMax)
		}
		s.workers[i] = w
	}
	return s
}

// preload queues replayed history for the workers to handle before their
// queues (in-memory transport, before start).
func (s *Subscription) preload(replay []Event) {
	for i := range replay {
		ev := &replay[i]
		w := s.pick(ev)
		w.pre = append(w.pre, item{ev: *ev, ts: s.bus.topicState(ev.Topic), redelivered: true})
	}
}

func (s *Subscription) start() {
	s.running.Store(int32(len(s.workers)))
	for _, w := range s.workers {
		go s.run(w)
	}
}

// exit is called by each worker as it finishes; the last one retires the
// subscription and closes done.
func (s *Subscription) exit() {
	if s.running.Add(-1) == 0 {
		s.bus.retire(s)
		close(s.done)
	}
}

// Pattern returns the pattern the subscription was made with.
func (s *Subscription) Pattern() string { return s.pat.raw }

// Name returns the durable name, or "".
func (s *Subscription) Name() string { return s.opts.Name }

// Done is closed once the subscription is closed and its last handler call
// has returned.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Close removes this subscription, and only this one. From the moment it
// returns no further event is queued for it and no new handler call starts;
// a call already running has its ctx cancelled and may finish (wait on Done
// for it). Events still queued are dropped and counted as Drops.Closed —
// except on transports with redelivery, where they stay unacknowledged and
// are delivered again. Close is idempotent and may be called from within the
// subscription's own handler.
func (s *Subscription) Close() error {
	s.closeOnce.Do(func() {
		s.aborting.Store(true)
		s.cancel()
		for _, w := range s.workers {
			w.q.close()
		}
		s.closeErr = s.bus.removeSub(s)
	})
	return s.closeErr
}

// drain stops intake and lets the workers finish what is queued
// (Bus.Shutdown).
func (s *Subscription) drain() {
	s.closeOnce.Do(func() {
		for _, w := range s.workers {
			w.q.close()
		}
		s.closeErr = s.bus.removeSub(s)
	})
}

// abort makes the workers drop what is left and cancels running handlers.
func (s *Subscription) abort() {
	s.aborting.Store(true)
	s.cancel()
}

// pick returns the worker for ev: by topic and key, so that events with the
// same topic and key stay in order.
func (s *Subscription) pick(ev *Event) *worker {
	if len(s.workers) == 1 {
		return s.workers[0]
	}
	h := maphash.String(s.seed, ev.Topic) ^ maphash.String(s.seed, ev.Key)*0x9E3779B97F4A7C15
	return s.workers[h%uint64(len(s.workers))]
}

// offer queues *it for the worker w under the overflow policy. remote is true
// for deliveries from a transport's receiver, which wait for room without a
// time limit. It returns nil when the event was queued or dropped by policy.
//
// hint, when not nil, tells the publisher to give the worker the CPU (see
// Bus.publish): the worker was asleep and has just been woken, or it is
// falling behind.
func (s *Subscription) offer(ctx context.Context, w *worker, it *item, remote bool, hint *yieldHint) error {
	q := w.q
	var timer *time.Timer
	var timerC <-chan time.Time
	q.mu.Lock()
	for {
		if q.closed.Load() {
			q.mu.Unlock()
			stopTimer(timer)
			if !remote {
				s.drop(it, reasonClosed)
			}
			return ErrClosed
		}
		if !q.full() {
			if q.lagging && q.len() < q.size/2 {
				q.lagging = false
			}
			q.put(it)
			backlog := !remote && s.opts.Overflow == Block && q.backlogged()
			q.mu.Unlock()
			woke := q.wakeWorker()
			stopTimer(timer)
			if hint != nil {
				hint.woke = hint.woke || woke
				if backlog {
					hint.lagging = q
				}
			}
			return nil
		}
		switch s.opts.Overflow {
		case DropNewest:
			q.mu.Unlock()
			s.drop(it, reasonNewest)
			s.ackItem(it)
			return nil
		case DropOldest, KeepLatest:
			var old item
			reason := reasonOldest
			if s.opts.Overflow == KeepLatest {
				if slot := q.findKey(it); slot != nil {
					old = *slot
					*slot = *it
					reason = reasonSuperseded
				}
			}
			if reason == reasonOldest {
				old = q.evictOldest()
				q.put(it)
			}
			q.mu.Unlock()
			s.drop(&old, reason)
			s.ackItem(&old)
			return nil
		}
		// Block.
		if !remote && q.lagging {
			q.mu.Unlock()
			s.drop(it, reasonLagging)
			return nil
		}
		if !remote && s.opts.MaxBlock > 0 && timer == nil {
			timer = time.NewTimer(s.opts.MaxBlock)
			timerC = timer.C
		}
		switch q.waitRoom(ctx, timerC, s.ctx.Done()) {
		case waitCanceled:
			q.mu.Unlock()
			stopTimer(timer)
			if !remote {
				s.drop(it, reasonCanceled)
			}
			return ctx.Err()
		case waitTimeout:
			if !q.full() || q.closed.Load() {
				continue
			}
			q.lagging = true
			q.mu.Unlock()
			s.drop(it, reasonTimeout)
			return nil
		}
	}
}

// offerSelf queues a dead letter that one of s's own workers publishes on a
// topic s matches. Under the Block policy it does not wait: only s's workers
// make room, so waiting could deadlock them. With no room the dead letter is
// dropped for s (Drops.DeadLetterFailed); other subscribers still get it.
func (s *Subscription) offerSelf(it *item) {
	w := s.pick(&it.ev)
	if s.opts.Overflow != Block {
		_ = s.offer(s.ctx, w, it, false, nil)
		return
	}
	q := w.q
	q.mu.Lock()
	switch {
	case q.closed.Load():
		q.mu.Unlock()
		s.drop(it, reasonClosed)
	case q.full():
		q.mu.Unlock()
		s.drop(it, reasonDeadLetterFailed)
	default:
		q.put(it)
		q.mu.Unlock()
		q.wakeWorker()
	}
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

// Deliver implements Sink for remote transports.
func (s *Subscription) Deliver(ctx context.Context, d *Delivery) error {
	if s.aborting.Load() {
		return ErrClosed
	}
	if !s.pat.match(d.Event.Topic) {
		if d.Token != "" {
			if ts := s.tsub.Load(); ts != nil {
				ts.Ack(d.Event.Topic, d.Token)
			}
		}
		return nil
	}
	pub := s.bus.mono()
	if !d.PublishedAt.IsZero() {
		pub = int64(d.PublishedAt.Sub(epoch))
	}
	it := item{ev: d.Event, pub: pub, ts: s.bus.topicState(d.Event.Topic), token: d.Token, redelivered: d.Redelivered}
	return s.offer(ctx, s.pick(&it.ev), &it, true, nil)
}

// run is a worker's goroutine. When a handler calls runtime.Goexit nothing
// can stop this goroutine from ending, so its deferred call starts another
// that takes over: it finishes the event in progress as a failed call
// (retried or dead-lettered, like after a panic) and goes on with the rest.
func (s *Subscription) run(w *worker) {
	defer func() {
		if w.goexited {
			go s.run(w)
			return
		}
		s.exit()
	}()
	s.resume(w)
	for w.preAt < len(w.pre) {
		it := &w.pre[w.preAt]
		w.preAt++
		s.handle(w, it)
	}
	w.pre, w.preAt = nil, 0
	w.q.drain(s, w)
}

// resume finishes the event whose handler call ended in runtime.Goexit, if
// any.
func (s *Subscription) resume(w *worker) {
	if !w.goexited {
		return
	}
	it, attempt := w.cur, w.attempt
	w.cur, w.goexited = nil, false
	if s.failure(w, it, &PanicError{Goexit: true}, attempt) {
		return
	}
	s.attempts(w, it, attempt+1)
}

func (s *Subscription) handle(w *worker, it *item) {
	if s.aborting.Load() {
		s.abandon(it)
		return
	}
	now := s.bus.mono()
	if !it.redelivered {
		d := time.Duration(now - it.pub)
		s.latencyHist().Record(d)
		if s.bus.opts.TopicLatency {
			it.ts.latency().Record(d)
		}
	}
	if w.dedup != nil && w.dedup.has(it.ev.ID, now) {
		s.duplicates.Add(1)
		s.ackItem(it)
		return
	}
	s.attempts(w, it, 1)
}

// attempts calls the handler for it, from the given attempt on, until it
// succeeds, is dead-lettered or is abandoned.
func (s *Subscription) attempts(w *worker, it *item, attempt int) {
	for ; ; attempt++ {
		err := s.call(w, it, attempt)
		if err == nil {
			s.delivered.Add(1)
			it.ts.delivered.Add(1)
			s.finish(w, it)
			return
		}
		if s.failure(w, it, err, attempt) {
			return
		}
	}
}

// failure counts a failed handler call and dead-letters or abandons it, or
// waits out the retry backoff. It reports whether it is done with it (false:
// call the handler again).
func (s *Subscription) failure(w *worker, it *item, err error, attempt int) bool {
	s.failed.Add(1)
	it.ts.failed.Add(1)
	if s.aborting.Load() {
		s.abandon(it)
		return true
	}
	if IsPermanent(err) || attempt >= s.opts.Retry.MaxAttempts {
		s.deadLetter(w, it, err, attempt)
		return true
	}
	s.retried.Add(1)
	it.ts.retried.Add(1)
	if !sleepCtx(s.ctx, s.opts.Retry.backoff(attempt)) || s.aborting.Load() {
		s.abandon(it)
		return true
	}
	return false
}

// call runs the handler once. A panic is recovered and returned as a
// *PanicError. runtime.Goexit cannot be stopped: call counts it and marks
// the worker, and run's deferred call carries on in a new goroutine.
func (s *Subscription) call(w *worker, it *item, attempt int) (err error) {
	w.cur, w.attempt = it, attempt
	returned := false
	defer func() {
		if r := recover(); r != nil {
			s.panics.Add(1)
			err = &PanicError{Value: r, Stack: debug.Stack()}
		} else if !returned {
			s.goexits.Add(1)
			w.goexited = true
			return // leave w.cur for resume
		}
		w.cur = nil
	}()
	err = s.handler(s.ctx, it.ev)
	returned = true
	return err
}

// finish acknowledges a handled (or dead-lettered) event and remembers its ID.
func (s *Subscription) finish(w *worker, it *item) {
	if w.dedup != nil {
		w.dedup.add(it.ev.ID, s.bus.mono())
	}
	s.ackItem(it)
}

func (s *Subscription) ackItem(it *item) {
	if it.token == "" {
		return
	}
	// Before the transport's Subscribe has returned there is nothing to
	// acknowledge to; the entry stays pending and comes back.
	if ts := s.tsub.Load(); ts != nil {
		ts.Ack(it.ev.Topic, it.token)
	}
}

// abandon gives up on an event because the subscription is closing. With a
// redelivering transport it stays unacknowledged and comes back; otherwise it
// is counted as dropped.
func (s *Subscription) abandon(it *item) {
	if it.token != "" && s.bus.feat.Redelivery {
		return
	}
	s.drop(it, reasonClosed)
}

func (s *Subscription) drop(it *item, r dropReason) {
	s.drops.add(r)
	if it.ts != nil {
		it.ts.drops.add(r)
	}
}

func (s *Subscription) deadLetter(w *worker, it *item, herr error, attempts int) {
	prefix := s.bus.opts.DeadLetterPrefix
	topic := s.opts.DeadLetterTopic
	if topic == "" {
		topic = prefix + it.ev.Topic
	}
	if it.ev.Topic == topic || (s.opts.DeadLetterTopic == "" && strings.HasPrefix(it.ev.Topic, prefix)) {
		// A dead letter that fails again is not dead-lettered again.
		s.drop(it, reasonDeadLetterFailed)
		s.bus.report(errors.Join(errors.New("eventbus: handler failed on dead-letter event "+it.ev.ID.String()+" on "+it.ev.Topic), herr))
		s.finish(w, it)
		return
	}
	dl := it.ev
	dl.Headers = make(map[string]string, len(it.ev.Headers)+4)
	maps.Copy(dl.Headers, it.ev.Headers)
	dl.Headers[HeaderDeadLetterError] = herr.Error()
	dl.Headers[HeaderDeadLetterTopic] = it.ev.Topic
	dl.Headers[HeaderDeadLetterSubscription] = s.describe()
	dl.Headers[HeaderDeadLetterAttempts] = strconv.Itoa(attempts)
	retry := s.opts.Retry
	for try := 1; ; try++ {
		err := s.bus.publish(s.ctx, topic, &dl, s)
		if err == nil {
			s.deadLettered.Add(1)
			it.ts.deadLettered.Add(1)
			s.finish(w, it)
			return
		}
		s.bus.report(errors.Join(errors.New("eventbus: dead-lettering "+it.ev.ID.String()+" to "+topic), err))
		var te *TopicError
		if errors.As(err, &te) || errors.Is(err, ErrPayloadTooLarge) || errors.Is(err, ErrEventTooLarge) || errors.Is(err, ErrClosed) || s.ctx.Err() != nil {
			if s.ctx.Err() != nil && it.token != "" && s.bus.feat.Redelivery {
				return // closing: leave it unacknowledged for redelivery
			}
			s.drop(it, reasonDeadLetterFailed)
			s.finish(w, it)
			return
		}
		if !sleepCtx(s.ctx, retry.backoff(try)) {
			s.abandon(it)
			return
		}
	}
}

func (s *Subscription) describe() string {
	if s.opts.Name != "" {
		return s.opts.Name
	}
	return s.pat.raw + "#" + strconv.FormatUint(s.id, 10)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// dedup remembers recently handled IDs for one worker.
type dedup struct {
	window int64
	max    int
	seen   map[ID]int64 // ID → expiry (mono ns)
	ring   []dedupEntry
	head   int
	n      int
}

type dedupEntry struct {
	id  ID
	exp int64
}

func newDedup(window time.Duration, max int) *dedup {
	return &dedup{window: int64(window), max: max, seen: make(map[ID]int64), ring: make([]dedupEntry, 0, min(max, 1024))}
}

func (d *dedup) has(id ID, now int64) bool {
	if id.IsZero() {
		return false
	}
	exp, ok := d.seen[id]
	return ok && exp > now
}

func (d *dedup) add(id ID, now int64) {
	if id.IsZero() {
		return
	}
	// Expire from the oldest end, and make room when at capacity.
	for d.n > 0 {
		e := &d.ring[d.head]
		if e.exp > now && d.n < d.max {
			break
		}
		if d.seen[e.id] == e.exp {
			delete(d.seen, e.id)
		}
		d.head++
		if d.head == len(d.ring) {
			d.head = 0
		}
		d.n--
	}
	exp := now + d.window
	d.seen[id] = exp
	if d.n == len(d.ring) { // grow the ring (up to max)
		nr := make([]dedupEntry, min(max(2*len(d.ring), 16), d.max))
		for i := 0; i < d.n; i++ {
			nr[i] = d.ring[(d.head+i)%len(d.ring)]
		}
		d.ring, d.head = nr, 0
	}
	d.ring[(d.head+d.n)%len(d.ring)] = dedupEntry{id, exp}
	d.n++
}
