package router

import (
	"container/heap"
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// tierRT is a tier of one configuration: its limits, queue and replicas.
// Concurrency counts belong to the configuration (in-flight requests finish
// on the configuration they started with); stats and breakers are shared
// across configurations by name.
type tierRT struct {
	cfg     Tier
	next    *tierRT
	st      *tierStats
	maxConc int // 0: unbounded
	logger  *slog.Logger

	mu       sync.Mutex
	inflight int
	replicas []*replicaRT
	queue    waitQueue
	seq      uint64
	scratch  []int
}

type replicaRT struct {
	cfg      Replica
	hash     uint64
	max      int // 0: unbounded
	inflight int // guarded by tier.mu
	st       *replicaStats
}

func (r *Router) newTierRT(t Tier) *tierRT {
	rt := &tierRT{cfg: t, st: r.tierStatsFor(t.Name), maxConc: t.MaxConcurrent}
	per := 0
	if t.MaxConcurrent > 0 {
		per = (t.MaxConcurrent + len(t.Replicas) - 1) / len(t.Replicas)
	}
	for _, rep := range t.Replicas {
		m := rep.MaxConcurrent
		if m == 0 {
			m = per
		}
		rt.replicas = append(rt.replicas, &replicaRT{
			cfg:  rep,
			hash: hashString(rep.Name),
			max:  m,
			st:   r.replicaStatsFor(t.Name, rep.Name, t.Breaker),
		})
	}
	rt.scratch = make([]int, 0, len(rt.replicas))
	return rt
}

func (t *tierRT) replicaByName(name string) *replicaRT {
	for _, r := range t.replicas {
		if r.cfg.Name == name {
			return r
		}
	}
	return nil
}

// lease is an admitted request's hold on a tier slot and a replica slot.
type lease struct {
	tier   *tierRT
	rep    *replicaRT
	probe  bool
	reason Reason // ReasonAffinity, ReasonSpill or ReasonLeastLoaded
}

// waiter is a queued request.
type waiter struct {
	importance Importance
	deadline   int64 // unix ns, math.MaxInt64 when none
	seq        uint64
	key        string
	index      int
	ready      chan struct{} // closed when l is set
	l          lease
}

// waitQueue orders waiters by importance (highest first), then deadline
// (earliest first), then arrival.
type waitQueue []*waiter

func (q waitQueue) Len() int { return len(q) }
func (q waitQueue) Less(i, j int) bool {
	a, b := q[i], q[j]
	if a.importance != b.importance {
		return a.importance > b.importance
	}
	if a.deadline != b.deadline {
		return a.deadline < b.deadline
	}
	return a.seq < b.seq
}
func (q waitQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index = i
	q[j].index = j
}
func (q *waitQueue) Push(x any) {
	w := x.(*waiter)
	w.index = len(*q)
	*q = append(*q, w)
}
func (q *waitQueue) Pop() any {
	old := *q
	n := len(old)
	w := old[n-1]
	old[n-1] = nil
	w.index = -1
	*q = old[:n-1]
	return w
}

// pick chooses a replica for a request with the given affinity key, or nil
// when none is available. allOpen reports that every replica with room had
// its breaker open. t.mu must be held.
func (t *tierRT) pick(key string, now time.Time) (rep *replicaRT, reason Reason, allOpen bool) {
	cand := t.scratch[:0]
	withRoom := 0
	for i, r := range t.replicas {
		if r.max > 0 && r.inflight >= r.max {
			continue
		}
		withRoom++
		if !r.st.br.available(now) {
			continue
		}
		cand = append(cand, i)
	}
	if len(cand) == 0 {
		return nil, "", withRoom > 0
	}
	if key != "" {
		// Rendezvous hashing: the replica with the highest score for the
		// key owns it, whether or not it has room now.
		kh := hashString(key)
		best, bestScore := -1, uint64(0)
		for i, r := range t.replicas {
			if s := mix(kh ^ r.hash); best < 0 || s > bestScore {
				best, bestScore = i, s
			}
		}
		for _, i := range cand {
			if i == best {
				return t.replicas[i], ReasonAffinity, false
			}
		}
		reason = ReasonSpill
	} else {
		reason = ReasonLeastLoaded
	}
	if len(cand) == 1 {
		return t.replicas[cand[0]], reason, false
	}
	// Power of two choices on outstanding requests.
	i := rand.IntN(len(cand))
	j := rand.IntN(len(cand) - 1)
	if j >= i {
		j++
	}
	a, b := t.replicas[cand[i]], t.replicas[cand[j]]
	if b.inflight < a.inflight {
		a = b
	}
	return a, reason, false
}

// take marks rep as used by one more request. t.mu must be held.
func (t *tierRT) take(rep *replicaRT, now time.Time) bool {
	t.inflight++
	rep.inflight++
	t.st.inflight.Add(1)
	rep.st.inflight.Add(1)
	return rep.st.br.acquire(now)
}

func (t *tierRT) hasRoom() bool { return t.maxConc == 0 || t.inflight < t.maxConc }

// admission is the result of admit.
type admission struct {
	l         lease
	queued    time.Duration
	predicted time.Duration
}

// admit waits for a slot on the tier and a replica. It returns
// ErrSaturated, ErrCircuitOpen, ErrPredictedLate or the context's error.
// checkLate enables the deadline prediction (only when a fallback exists).
func (t *tierRT) admit(ctx context.Context, req *Request, now time.Time, checkLate bool) (admission, error) {
	var a admission
	deadline, hasDeadline := ctx.Deadline()
	p95 := time.Duration(t.st.p95.Load())
	if p95 == 0 {
		p95 = t.cfg.TTFTTarget
	}

	t.mu.Lock()
	free := t.hasRoom() && len(t.queue) == 0
	if free {
		rep, reason, allOpen := t.pick(req.AffinityKey, now)
		if rep != nil {
			a.predicted = p95
			if checkLate && hasDeadline && p95 > deadline.Sub(now) {
				t.mu.Unlock()
				return a, ErrPredictedLate
			}
			a.l = lease{tier: t, rep: rep, reason: reason, probe: t.take(rep, now)}
			t.mu.Unlock()
			return a, nil
		}
		if allOpen {
			t.mu.Unlock()
			return a, ErrCircuitOpen
		}
	}
	// The tier is full: estimate the wait, then queue.
	wait := t.estimateWait()
	a.predicted = wait + p95
	if checkLate && hasDeadline && a.predicted > deadline.Sub(now) {
		t.mu.Unlock()
		return a, ErrPredictedLate
	}
	if len(t.queue) >= t.cfg.MaxQueued {
		t.mu.Unlock()
		return a, ErrSaturated
	}
	w := &waiter{
		importance: req.Importance,
		deadline:   maxInt64,
		seq:        t.seq,
		key:        req.AffinityKey,
		ready:      make(chan struct{}),
	}
	t.seq++
	if hasDeadline {
		w.deadline = deadline.UnixNano()
	}
	heap.Push(&t.queue, w)
	t.st.queued.Add(1)
	t.mu.Unlock()

	limit := t.cfg.QueueTimeout
	if hasDeadline {
		limit = min(limit, deadline.Sub(now))
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	var err error
	select {
	case <-w.ready:
		a.l = w.l
		a.queued = time.Since(now)
		return a, nil
	case <-timer.C:
		err = ErrSaturated
	case <-ctx.Done():
		err = ctx.Err()
	}
	t.mu.Lock()
	if w.index >= 0 {
		heap.Remove(&t.queue, w.index)
		t.st.queued.Add(-1)
		t.mu.Unlock()
		return a, err
	}
	t.mu.Unlock()
	// A slot was handed to us as we gave up.
	<-w.ready
	if ctx.Err() == nil {
		a.l = w.l
		a.queued = time.Since(now)
		return a, nil
	}
	t.release(w.l, outcomeNeutral, time.Now())
	return a, err
}

const maxInt64 = int64(^uint64(0) >> 1)

// estimateWait guesses how long a new waiter would queue: the waiters
// ahead of it plus itself, served at the tier's concurrency, each taking
// the recent mean request time. t.mu must be held.
func (t *tierRT) estimateWait() time.Duration {
	svc := time.Duration(t.st.service.Load())
	if svc == 0 {
		return 0
	}
	slots := t.maxConc
	if slots == 0 {
		for _, r := range t.replicas {
			slots += r.max
		}
	}
	if slots <= 0 {
		return 0
	}
	return svc * time.Duration(len(t.queue)+1) / time.Duration(slots)
}

// release returns a lease's slots, records the breaker outcome and hands
// freed slots to queued requests.
func (t *tierRT) release(l lease, o outcome, now time.Time) {
	if opened := l.rep.st.br.done(now, l.probe, o); opened {
		t.logger.Warn("router: circuit breaker opened", "tier", t.cfg.Name, "replica", l.rep.cfg.Name, "cooldown", t.cfg.Breaker.Cooldown)
	}
	t.mu.Lock()
	t.inflight--
	l.rep.inflight--
	t.st.inflight.Add(-1)
	l.rep.st.inflight.Add(-1)
	for len(t.queue) > 0 && t.hasRoom() {
		w := t.queue[0]
		rep, reason, _ := t.pick(w.key, now)
		if rep == nil {
			break
		}
		heap.Pop(&t.queue)
		t.st.queued.Add(-1)
		w.l = lease{tier: t, rep: rep, reason: reason, probe: t.take(rep, now)}
		close(w.ready)
	}
	t.mu.Unlock()
}

// hashString is FNV-1a, inlined so that it does not allocate.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix is the splitmix64 finalizer.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
