package eventbus

import (
	"context"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// epoch anchors the publish stamps carried in queue items (Bus.mono). With
// the default clock they are monotonic.
var epoch = time.Now()

// item is one queued delivery. Items are copied into the ring by value, so
// queueing allocates nothing.
type item struct {
	ev          Event
	pub         int64 // publish time, ns since epoch
	ts          *topicState
	token       string // transport ack token
	redelivered bool
}

// queue is a bounded ring of items fed by any number of producers and drained
// by one worker.
//
// The ring is allocated on the first put and doubled (under mu) whenever it
// is full below the queue's capacity, so an idle subscription costs no ring
// at all and a quiet one a small ring. A grow copies the queued items into
// the new ring and publishes it before the tail that covers items put into
// it; the worker loads the ring after the tail, so it always reads a ring
// that holds every item below the tail it saw. Rings are not shrunk.
//
// Producers serialise on mu. For the Block and DropNewest policies the worker
// never takes mu: it reads tail atomically, handles items in place and
// publishes its progress through head, so a publisher and its subscriber do
// not contend for a lock. DropOldest and KeepLatest rewrite queued items, so
// for them (locked mode) the worker copies items out under mu instead.
type queue struct {
	// Read-mostly: set up once or written rarely, read by both sides.
	ring    atomic.Pointer[ring] // nil until the first put
	size    uint64               // capacity (≤ the largest ring's length)
	locked  bool
	closed  atomic.Bool
	parked  atomic.Bool  // the worker sleeps on wake
	waiters atomic.Int32 // producers waiting for room
	wake    chan struct{}
	_       [64]byte

	// Producer side (written per publish).
	mu         sync.Mutex
	tail       atomic.Uint64 // next position to write
	cachedHead uint64        // a recent head, refreshed when the ring looks full (mu)
	lagging    bool          // Block timed out; drop at once until below half full (mu)
	slowAt     atomic.Uint64 // head+1 when softWait gave up on the worker; 0: not slow
	space      chan struct{} // closed when the worker brings the depth to wakeAt; nil when nobody waits (mu)
	wakeAt     atomic.Uint64 // depth at which the worker closes space (set under mu)
	_          [64]byte

	// Worker side (written per delivery).
	head atomic.Uint64 // next position to read
	spin int           // adaptive spin budget
	_    [64]byte
}

const (
	maxSpin       = 64 // Gosched rounds a worker spins before parking
	producerSpins = 16 // Gosched rounds a blocked producer spins before parking
)

const batchMax = 64 // items a locked-mode worker copies out per lock

// ringMin is the length of a queue's first ring.
const ringMin = 8

// ring is a queue's storage: a power-of-two array of items indexed by
// position & mask.
type ring struct {
	buf  []item
	mask uint64
}

func newRing(n uint64) *ring { return &ring{buf: make([]item, n), mask: n - 1} }

func (r *ring) at(pos uint64) *item { return &r.buf[pos&r.mask] }

func newQueue(size int, locked bool) *queue {
	return &queue{size: uint64(size), locked: locked, wake: make(chan struct{}, 1), spin: maxSpin}
}

// room returns a ring with a free slot for position t, growing the ring if
// needed; mu is held and the queue is not full. It reads the worker's head
// only when the cached one says the ring is full.
func (q *queue) room(t uint64) *ring {
	r := q.ring.Load()
	if r != nil && t-q.cachedHead < uint64(len(r.buf)) {
		return r
	}
	if r != nil {
		q.cachedHead = q.head.Load()
		if t-q.cachedHead < uint64(len(r.buf)) {
			return r
		}
	}
	limit := uint64(1) << bits.Len64(q.size-1) // the smallest power of two ≥ size
	n := uint64(ringMin)
	if r != nil {
		n = 2 * uint64(len(r.buf))
	}
	n = min(n, limit)
	nr := newRing(n)
	if r != nil {
		// Copy what may still be queued. The worker may be taking items
		// meanwhile: copies of items it took are never read.
		for p := q.head.Load(); p != t; p++ {
			*nr.at(p) = *r.at(p)
		}
	}
	q.ring.Store(nr)
	return nr
}

func (q *queue) depth() (n, capacity int, lagging bool) {
	q.mu.Lock()
	lagging = q.lagging
	q.mu.Unlock()
	return int(q.tail.Load() - q.head.Load()), int(q.size), lagging
}

// full reports whether there is no room; the caller holds mu. It reads the
// worker's head only when the cached one says full, so a publisher does not
// pull the worker's cache line on every event.
func (q *queue) full() bool {
	t := q.tail.Load()
	if t-q.cachedHead < q.size {
		return false
	}
	q.cachedHead = q.head.Load()
	return t-q.cachedHead >= q.size
}

// softLimit is the queue depth above which a Block publisher waits for the
// worker (see queue.softWait). It bounds the queueing delay a fast
// subscriber sees when its publisher is faster still: about softLimit
// handler calls, instead of a full queue's worth.
const softLimit = 8

const softSpins = 16 // scheduling rounds a paced publisher spins before it sleeps

// softPatience is how long a publisher waits for a worker that takes no
// item at all (a slow handler call) before it marks the queue slow and stops
// waiting; the queue's room beyond softLimit then takes the burst at full
// speed until the worker takes its next item. A burst into a slow
// subscriber costs its publisher at most one softPatience per handler call,
// not one per event.
const softPatience = 100 * time.Microsecond

// softWait paces a publisher that has just queued into q while q is deeper
// than softLimit: it spins briefly, then sleeps until the worker has brought
// the depth down to softLimit/2. It returns early when ctx ends, the queue
// closes, or the worker takes no item for softPatience (then the queue is
// marked slow; see backlogged).
func (q *queue) softWait(ctx context.Context) {
	for i := 0; i < softSpins; i++ {
		runtime.Gosched()
		if q.tail.Load()-q.head.Load() <= softLimit || q.closed.Load() {
			return
		}
	}
	q.mu.Lock()
	if q.closed.Load() {
		q.mu.Unlock()
		return
	}
	ch := q.awaitLocked(softLimit / 2)
	q.mu.Unlock()
	defer q.waiters.Add(-1)
	h := q.head.Load()
	if q.tail.Load()-h <= softLimit/2 {
		return
	}
	t := time.NewTimer(softPatience)
	defer t.Stop()
	for {
		select {
		case <-ch:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			nh := q.head.Load()
			if nh == h {
				q.slowAt.Store(h + 1)
				return
			}
			h = nh
			t.Reset(softPatience)
		}
	}
}

// backlogged reports whether a Block publisher should wait for the worker:
// more than softLimit items are queued and the queue is not marked slow. The
// slow mark lasts until the worker takes its next item. The caller holds mu.
func (q *queue) backlogged() bool {
	t := q.tail.Load()
	if t-q.cachedHead > softLimit {
		q.cachedHead = q.head.Load()
		if t-q.cachedHead > softLimit {
			if s := q.slowAt.Load(); s != 0 {
				if s == q.cachedHead+1 {
					return false // still in the call that made it slow
				}
				q.slowAt.Store(0)
			}
			return true
		}
	}
	return false
}

// len returns the number of queued items; the caller holds mu.
func (q *queue) len() uint64 { return q.tail.Load() - q.head.Load() }

// put appends *it; the caller holds mu and has checked for room. The caller
// must call wakeWorker after unlocking.
func (q *queue) put(it *item) {
	t := q.tail.Load()
	*q.room(t).at(t) = *it
	q.tail.Store(t + 1)
}

// wakeWorker wakes the worker if it sleeps, and reports whether it did.
func (q *queue) wakeWorker() bool {
	if q.parked.Load() && q.parked.CompareAndSwap(true, false) {
		select {
		case q.wake <- struct{}{}:
		default:
		}
		return true
	}
	return false
}

// evictOldest removes and returns the oldest item (locked mode, mu held,
// queue not empty).
func (q *queue) evictOldest() item {
	h := q.head.Load()
	slot := q.ring.Load().at(h)
	old := *slot
	*slot = item{}
	q.head.Store(h + 1)
	return old
}

// findKey returns the slot of the newest queued item with the same topic and
// key as it, or nil (locked mode, mu held).
func (q *queue) findKey(it *item) *item {
	h, r := q.head.Load(), q.ring.Load()
	for p := q.tail.Load(); p != h; p-- {
		e := r.at(p - 1)
		if e.ev.Key == it.ev.Key && e.ev.Topic == it.ev.Topic {
			return e
		}
	}
	return nil
}

// close stops producers; the worker drains what is left and then stops.
func (q *queue) close() {
	q.mu.Lock()
	q.closed.Store(true)
	q.wakeWaitersLocked()
	q.mu.Unlock()
	q.wakeWorker()
}

// wakeWaitersLocked wakes every producer waiting on space; mu is held.
func (q *queue) wakeWaitersLocked() {
	if q.space != nil {
		close(q.space)
		q.space = nil
		q.wakeAt.Store(0)
	}
}

// awaitLocked registers a producer that waits until the depth is at most
// depth and returns the channel to wait on; mu is held. The caller must
// call q.waiters.Add(-1) when done, and check the depth again after
// unlocking.
func (q *queue) awaitLocked(depth uint64) <-chan struct{} {
	if q.space == nil {
		q.space = make(chan struct{})
	}
	if q.wakeAt.Load() < depth {
		q.wakeAt.Store(depth)
	}
	q.waiters.Add(1)
	return q.space
}

// freed tells producers waiting for the depth to fall that it has, now
// that the worker's head is h.
func (q *queue) freed(h uint64) {
	if q.waiters.Load() > 0 && q.tail.Load()-h <= q.wakeAt.Load() {
		q.mu.Lock()
		q.wakeWaitersLocked()
		q.mu.Unlock()
	}
}

// waitRoom waits until the worker frees room, ctx ends, the timer fires or
// the queue closes. It is called with mu held and returns with it held.
func (q *queue) waitRoom(ctx context.Context, timer <-chan time.Time, abort <-chan struct{}) waitResult {
	// Spin first: a busy worker frees a slot within a handler call.
	for i := 0; i < producerSpins; i++ {
		q.mu.Unlock()
		runtime.Gosched()
		q.mu.Lock()
		if q.closed.Load() || !q.full() {
			return waitRoom
		}
	}
	ch := q.awaitLocked(q.size - 1)
	q.mu.Unlock()
	defer q.waiters.Add(-1)
	if q.tail.Load()-q.head.Load() < q.size { // freed before we registered
		q.mu.Lock()
		return waitRoom
	}
	var r waitResult
	select {
	case <-ch:
		r = waitRoom
	case <-ctx.Done():
		r = waitCanceled
	case <-timer:
		r = waitTimeout
	case <-abort:
		r = waitRoom // the caller sees closed
	}
	q.mu.Lock()
	return r
}

type waitResult uint8

const (
	waitRoom waitResult = iota
	waitCanceled
	waitTimeout
)

// park waits until a producer adds an item (or the queue closes), spinning
// first: under load the next event is usually a few hundred nanoseconds
// away, while waking a parked goroutine costs microseconds. busy says whether
// the worker just handled a backlog (more than one item since it last
// waited); a worker that keeps finding single items is not under load, so
// its spin budget decays to nothing and idle subscribers burn no CPU.
func (q *queue) park(h uint64, busy bool) {
	if busy {
		q.spin = maxSpin
	}
	for i := 0; i < q.spin; i++ {
		runtime.Gosched()
		if q.tail.Load() != h || q.closed.Load() {
			return
		}
	}
	q.spin /= 2
	q.parked.Store(true)
	if q.tail.Load() != h || q.closed.Load() {
		if !q.parked.CompareAndSwap(true, false) {
			<-q.wake // a producer already claimed the wake-up: consume it
		}
		return
	}
	<-q.wake
}

// itemHandler is what a queue's worker hands each item to (a
// Subscription). The item lives in w, so that a handler's runtime.Goexit
// does not lose it.
type itemHandler interface {
	handle(w *worker, it *item)
}

// drain hands every item to h until the queue is closed and empty.
func (q *queue) drain(h itemHandler, w *worker) {
	if q.locked {
		q.drainLocked(h, w)
		return
	}
	p := q.head.Load()
	since := p // head when the worker last waited
	for {
		t := q.tail.Load()
		if p == t {
			if q.closed.Load() && q.tail.Load() == p {
				return
			}
			q.park(p, p-since > 1)
			since = p
			continue
		}
		// Load the ring after the tail: it holds every item below t.
		r := q.ring.Load()
		for ; p != t; p++ {
			// Copy the item out and free its slot before handling it, so the
			// event in the handler does not count against the queue's room.
			// The slot is not cleared (the next lap overwrites it): clearing
			// would hand its cache lines back and forth with the publisher.
			// The copy lives in the worker (not on this goroutine's
			// stack) so that a handler's runtime.Goexit does not lose it.
			w.it = *r.at(p)
			q.head.Store(p + 1)
			q.freed(p + 1)
			h.handle(w, &w.it)
			w.it = item{} // an idle worker holds no payload
		}
	}
}

// drainLocked is drain for locked mode. The batch it copies out lives in the
// worker, so that after a handler's runtime.Goexit the worker's next
// goroutine handles the rest of it.
func (q *queue) drainLocked(h itemHandler, w *worker) {
	if w.batch == nil {
		w.batch = make([]item, 0, batchMax)
	}
	since := q.head.Load()
	for {
		for w.batchAt < len(w.batch) {
			it := &w.batch[w.batchAt]
			w.batchAt++
			h.handle(w, it)
		}
		clear(w.batch)
		w.batch, w.batchAt = w.batch[:0], 0
		q.mu.Lock()
		p, t := q.head.Load(), q.tail.Load()
		r := q.ring.Load()
		for ; p != t && len(w.batch) < batchMax; p++ {
			slot := r.at(p)
			w.batch = append(w.batch, *slot)
			*slot = item{}
		}
		q.head.Store(p)
		if len(w.batch) > 0 {
			q.wakeWaitersLocked()
		}
		closed := q.closed.Load()
		q.mu.Unlock()
		if len(w.batch) == 0 {
			if closed {
				return
			}
			q.park(p, p-since > 1)
			since = p
		}
	}
}
