package eventbus

import (
	"sync/atomic"

	"github.com/bodybroker/sdk/latency"
)

// Drops counts events dropped, by reason. Nothing is dropped without being
// counted here.
type Drops struct {
	// Oldest: evicted by DropOldest (or KeepLatest without a matching key).
	Oldest uint64 `json:"oldest"`
	// Newest: refused by DropNewest.
	Newest uint64 `json:"newest"`
	// Superseded: replaced by a newer event with the same key (KeepLatest).
	Superseded uint64 `json:"superseded"`
	// Timeout: the Block policy's MaxBlock ran out.
	Timeout uint64 `json:"timeout"`
	// Lagging: dropped at once because the subscriber was lagging after a
	// Timeout and its queue was still full.
	Lagging uint64 `json:"lagging"`
	// Canceled: the publisher's ctx ended while it waited for room.
	Canceled uint64 `json:"canceled"`
	// Closed: still queued, or arriving, when the subscription closed, on a
	// transport without redelivery.
	Closed uint64 `json:"closed"`
	// DeadLetterFailed: the handler failed and the event could not be
	// dead-lettered (it was a dead letter already, or the dead-letter topic
	// was invalid).
	DeadLetterFailed uint64 `json:"dead_letter_failed"`
}

// Total returns the sum of all reasons.
func (d Drops) Total() uint64 {
	return d.Oldest + d.Newest + d.Superseded + d.Timeout + d.Lagging + d.Canceled + d.Closed + d.DeadLetterFailed
}

func (d *Drops) add(o Drops) {
	d.Oldest += o.Oldest
	d.Newest += o.Newest
	d.Superseded += o.Superseded
	d.Timeout += o.Timeout
	d.Lagging += o.Lagging
	d.Canceled += o.Canceled
	d.Closed += o.Closed
	d.DeadLetterFailed += o.DeadLetterFailed
}

type dropReason uint8

const (
	reasonOldest dropReason = iota
	reasonNewest
	reasonSuperseded
	reasonTimeout
	reasonLagging
	reasonCanceled
	reasonClosed
	reasonDeadLetterFailed
	numReasons
)

type dropCounters [numReasons]atomic.Uint64

func (c *dropCounters) add(r dropReason) { c[r].Add(1) }

func (c *dropCounters) snapshot() Drops {
	return Drops{
		Oldest:           c[reasonOldest].Load(),
		Newest:           c[reasonNewest].Load(),
		Superseded:       c[reasonSuperseded].Load(),
		Timeout:          c[reasonTimeout].Load(),
		Lagging:          c[reasonLagging].Load(),
		Canceled:         c[reasonCanceled].Load(),
		Closed:           c[reasonClosed].Load(),
		DeadLetterFailed: c[reasonDeadLetterFailed].Load(),
	}
}

// TopicStats are the counters of one topic, over all subscriptions of this
// Bus.
type TopicStats struct {
	// Published counts events this Bus published on the topic.
	Published uint64 `json:"published"`
	// Delivered counts successful handler calls; Failed failed ones
	// (including those retried); Retried the retries; DeadLettered the events
	// moved to the dead-letter topic.
	Delivered    uint64 `json:"delivered"`
	Failed       uint64 `json:"failed"`
	Retried      uint64 `json:"retried"`
	DeadLettered uint64 `json:"dead_lettered"`
	Dropped      Drops  `json:"dropped"`
	// Latency is publish → handler call, over all subscriptions.
	Latency latency.Summary `json:"latency"`
}

// SubscriptionStats are the counters of one subscription.
type SubscriptionStats struct {
	ID       uint64   `json:"id"`
	Pattern  string   `json:"pattern"`
	Name     string   `json:"name,omitempty"`
	Overflow Overflow `json:"overflow"`
	// Received counts events taken into the queue.
	Received     uint64 `json:"received"`
	Delivered    uint64 `json:"delivered"`
	Failed       uint64 `json:"failed"`
	Retried      uint64 `json:"retried"`
	DeadLettered uint64 `json:"dead_lettered"`
	// Panics counts handler calls that panicked (and were recovered).
	Panics uint64 `json:"panics"`
	// Goexits counts handler calls that ended in runtime.Goexit (t.FailNow
	// in a test handler, say). Each is a failed call, like a panic; the
	// worker carries on.
	Goexits uint64 `json:"goexits"`
	// Duplicates counts events suppressed by the dedup window.
	Duplicates uint64 `json:"duplicates"`
	Dropped    Drops  `json:"dropped"`
	// QueueDepth is the number of events waiting now, over all workers;
	// QueueCapacity their total room.
	QueueDepth    int  `json:"queue_depth"`
	QueueCapacity int  `json:"queue_capacity"`
	Lagging       bool `json:"lagging"`
	// Latency is publish → handler call (first attempt).
	Latency latency.Summary `json:"latency"`
}

// Stats is a point-in-time view of a Bus.
type Stats struct {
	Published    uint64                `json:"published"`
	Delivered    uint64                `json:"delivered"`
	Failed       uint64                `json:"failed"`
	Retried      uint64                `json:"retried"`
	DeadLettered uint64                `json:"dead_lettered"`
	Panics       uint64                `json:"panics"`
	Goexits      uint64                `json:"goexits"`
	Duplicates   uint64                `json:"duplicates"`
	Dropped      Drops                 `json:"dropped"`
	Latency      latency.Summary       `json:"latency"`
	Topics       map[string]TopicStats `json:"topics"`
	// Subscriptions lists the open subscriptions, oldest first.
	Subscriptions []SubscriptionStats `json:"subscriptions"`
	Transport     TransportStats      `json:"transport"`
}

// Stats returns this subscription's counters.
func (s *Subscription) Stats() SubscriptionStats {
	st := SubscriptionStats{
		ID: s.id, Pattern: s.pat.raw, Name: s.opts.Name, Overflow: s.opts.Overflow,
		Delivered:    s.delivered.Load(),
		Failed:       s.failed.Load(),
		Retried:      s.retried.Load(),
		DeadLettered: s.deadLettered.Load(),
		Panics:       s.panics.Load(),
		Goexits:      s.goexits.Load(),
		Duplicates:   s.duplicates.Load(),
		Dropped:      s.drops.snapshot(),
	}
	if h := s.lat.Load(); h != nil {
		st.Latency = h.Summary()
	}
	st.Received = st.Dropped.Superseded // replaced in place: received, never queued on their own
	for _, w := range s.workers {
		st.Received += w.q.tail.Load()
		n, c, lag := w.q.depth()
		st.QueueDepth += n
		st.QueueCapacity += c
		st.Lagging = st.Lagging || lag
	}
	return st
}
