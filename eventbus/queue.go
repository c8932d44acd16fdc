package eventbus

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// epoch anchors the monotonic publish stamps carried in queue items.
var epoch = time.Now()

func monoNow() int64 { return int64(time.Since(epoch)) }

// item is one queued delivery. Items are copied into and out of the ring by
// value, so queueing allocates nothing.
type item struct {
	ev          Event
	pub         int64 // publish time, ns since epoch
	ts          *topicState
	token       string // transport ack token
	redelivered bool
}

// queue is a bounded ring of items fed by any number of producers and drained
// by one worker. Producers never allocate unless they have to wait for room.
type queue struct {
	mu      sync.Mutex
	buf     []item
	head    int
	n       int
	closed  bool
	parked  bool // the worker sleeps on wake
	lagging bool // Block timed out; drop at once until below half full
	wake    chan struct{}
	space   chan struct{} // closed when room appears; nil when nobody waits
	pushes  atomic.Uint64 // lets a spinning worker notice new items without the lock

	spin int // worker-owned adaptive spin budget
}

const (
	maxSpin  = 64 // Gosched rounds a worker spins before parking
	batchMax = 64 // items a worker takes per lock
)

func newQueue(size int) *queue {
	return &queue{buf: make([]item, size), wake: make(chan struct{}, 1), spin: maxSpin}
}

// put appends *it; the caller holds mu and has checked for room. It returns
// whether the worker must be woken.
func (q *queue) put(it *item) bool {
	i := q.head + q.n
	if i >= len(q.buf) {
		i -= len(q.buf)
	}
	q.buf[i] = *it
	q.n++
	q.pushes.Add(1)
	if q.parked {
		q.parked = false
		return true
	}
	return false
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// evictOldest removes and returns the oldest item; the caller holds mu and
// q.n > 0.
func (q *queue) evictOldest() item {
	old := q.buf[q.head]
	q.buf[q.head] = item{}
	q.head++
	if q.head == len(q.buf) {
		q.head = 0
	}
	q.n--
	return old
}

// findKey returns the ring index of the newest queued item with the same
// topic and key as it, or -1.
func (q *queue) findKey(it *item) int {
	for k := q.n - 1; k >= 0; k-- {
		i := q.head + k
		if i >= len(q.buf) {
			i -= len(q.buf)
		}
		e := &q.buf[i].ev
		if e.Key == it.ev.Key && e.Topic == it.ev.Topic {
			return i
		}
	}
	return -1
}

// roomChan returns a channel closed when the worker next takes items; the
// caller holds mu.
func (q *queue) roomChan() chan struct{} {
	if q.space == nil {
		q.space = make(chan struct{})
	}
	return q.space
}

// close stops producers; the worker drains what is left and then sees
// ok=false from pop.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
	wake := q.parked
	q.parked = false
	q.mu.Unlock()
	if wake {
		q.signal()
	}
}

func (q *queue) depth() (n, capacity int, lagging bool) {
	q.mu.Lock()
	n, lagging = q.n, q.lagging
	q.mu.Unlock()
	return n, len(q.buf), lagging
}

// pop appends up to batchMax items to dst, waiting while the queue is empty.
// ok is false once the queue is closed and empty.
func (q *queue) pop(dst []item) (_ []item, ok bool) {
	for {
		q.mu.Lock()
		if q.n > 0 {
			k := min(q.n, batchMax, cap(dst)-len(dst))
			for ; k > 0; k-- {
				dst = append(dst, q.buf[q.head])
				q.buf[q.head] = item{}
				q.head++
				if q.head == len(q.buf) {
					q.head = 0
				}
				q.n--
			}
			if q.space != nil {
				close(q.space)
				q.space = nil
			}
			q.mu.Unlock()
			return dst, true
		}
		if q.closed {
			q.mu.Unlock()
			return dst, false
		}
		seen := q.pushes.Load()
		q.mu.Unlock()

		// Spin briefly before parking: under load the next event is usually
		// a few hundred nanoseconds away, and a park/unpark costs
		// microseconds. The budget shrinks while spinning does not pay off,
		// so idle subscribers do not burn CPU.
		got := false
		for i := 0; i < q.spin; i++ {
			runtime.Gosched()
			if q.pushes.Load() != seen {
				got = true
				break
			}
		}
		if got {
			q.spin = maxSpin
			continue
		}
		q.spin /= 2

		q.mu.Lock()
		if q.n > 0 || q.closed {
			q.mu.Unlock()
			continue
		}
		q.parked = true
		q.mu.Unlock()
		start := monoNow()
		<-q.wake
		if monoNow()-start < int64(50*time.Microsecond) {
			q.spin = maxSpin // events are arriving quickly again
		}
	}
}

// waitRoom waits until the worker takes items, ctx ends, the deadline timer
// fires or the queue closes. It is called with mu held and returns with it
// held. It reports why it returned.
func (q *queue) waitRoom(ctx context.Context, timer <-chan time.Time, abort <-chan struct{}) waitResult {
	// Spin first: a worker draining a batch makes room within microseconds.
	for i := 0; i < maxSpin/4; i++ {
		q.mu.Unlock()
		runtime.Gosched()
		q.mu.Lock()
		if q.closed || q.n < len(q.buf) {
			return waitRoom
		}
	}
	ch := q.roomChan()
	q.mu.Unlock()
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
