package router

import (
	"container/heap"
	"context"
	"errors"
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
	router  *Router
	now     func() time.Time // the router's clock

	mu       sync.Mutex
	inflight int
	replicas []*replicaRT
	queue    waitQueue
	seq      uint64
	scratch  []int
	wake     *time.Timer // dispatches when a breaker half-opens
	wakeAt   time.Time   // when wake fires; zero when none is pending

	// Fair queueing (see waiter.round): the round last dispatched per
	// importance level, and the queued requests per fairness key.
	rounds map[Importance]uint64
	fair   map[fairKey]*fairState
}

type fairKey struct {
	imp Importance
	key string
}

type fairState struct {
	last   uint64 // the round of the key's last queued waiter
	queued int
}

type replicaRT struct {
	cfg      Replica
	hash     uint64
	max      int  // 0: unbounded
	inflight int  // guarded by tier.mu
	refused  bool // its limiter refused during the current grab; guarded by tier.mu
	st       *replicaStats
}

func (r *Router) newTierRT(t Tier) *tierRT {
	rt := &tierRT{cfg: t, st: r.tierStatsFor(t.Name), maxConc: t.MaxConcurrent, now: r.now, router: r,
		rounds: make(map[Importance]uint64), fair: make(map[fairKey]*fairState)}
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
			st:   r.replicaStatsFor(t.Name, rep.Name),
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
	reason Reason    // ReasonAffinity, ReasonSpill or ReasonLeastLoaded
	adm    Admission // what the replica's Limiter admitted, if it has one
}

// waiter is a queued request.
//
// Fair queueing: within an importance level, waiters are served by round
// first. A waiter without a fairness key, or the first queued waiter of
// its key, joins the level's current round (the round of the last waiter
// dispatched); each further waiter of the same key joins the round after
// its key's previous one. So a player with ten queued requests gets one per
// round, like everybody else.
type waiter struct {
	importance Importance
	round      uint64
	deadline   int64 // unix ns, math.MaxInt64 when none
	seq        uint64
	key        string
	fair       string // fairness key; empty when none
	adm        Admission
	index      int
	ready      chan struct{} // closed when l or err is set
	l          lease
	err        error // set instead of l when the waiter is turned away
}

// waitQueue orders waiters by importance (highest first), then fair
// round (see waiter), then deadline (earliest first), then arrival.
type waitQueue []*waiter

func (q waitQueue) Len() int { return len(q) }
func (q waitQueue) Less(i, j int) bool {
	a, b := q[i], q[j]
	if a.importance != b.importance {
		return a.importance > b.importance
	}
	if a.round != b.round {
		return a.round < b.round
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
// when none is available. noneHealthy reports that no replica's breaker
// would let a request through, whatever their load: waiting cannot help,
// and the request gets ErrCircuitOpen. t.mu must be held.
func (t *tierRT) pick(key string, now time.Time) (rep *replicaRT, reason Reason, noneHealthy bool) {
	cand := t.scratch[:0]
	healthy := 0
	for i, r := range t.replicas {
		if !r.st.br.available(now) {
			continue
		}
		healthy++
		if r.refused || (r.max > 0 && r.inflight >= r.max) {
			continue
		}
		cand = append(cand, i)
	}
	if len(cand) == 0 {
		return nil, "", healthy == 0
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

// grab picks a replica whose limiter (if any) admits adm and takes a slot
// on the tier and on it, returning a lease with a nil rep when no replica
// is available (see pick for noneHealthy). t.mu must be held.
func (t *tierRT) grab(key string, adm Admission, now time.Time) (l lease, noneHealthy bool) {
	refused := false
	defer func() {
		if refused {
			for _, r := range t.replicas {
				r.refused = false
			}
		}
	}()
	// Each pass either succeeds or rules a replica out: its limiter
	// refused (marked refused), or another configuration's tier took its
	// half-open probe since pick looked (pick then skips it).
	for range 2*len(t.replicas) + 1 {
		rep, reason, none := t.pick(key, now)
		if rep == nil {
			return lease{}, none && !refused
		}
		lim := rep.cfg.Limiter
		if lim != nil && !lim.TryAcquire(adm) {
			rep.refused, refused = true, true
			rep.st.limited.Add(1)
			continue
		}
		probe, ok := rep.st.br.acquire(now)
		if !ok {
			if lim != nil {
				lim.Release(adm, LimitOutcome{})
			}
			continue
		}
		t.inflight++
		rep.inflight++
		t.st.inflight.Add(1)
		rep.st.inflight.Add(1)
		return lease{tier: t, rep: rep, reason: reason, probe: probe, adm: adm}, false
	}
	return lease{}, false
}

func (t *tierRT) hasRoom() bool { return t.maxConc == 0 || t.inflight < t.maxConc }

// predictTTFT is the tier's recent TTFT p95, or its TTFTTarget until it has
// measured one.
func (t *tierRT) predictTTFT() time.Duration {
	if p95 := time.Duration(t.st.p95.Load()); p95 > 0 {
		return p95
	}
	return t.cfg.TTFTTarget
}

// minFallbackReserve is the least time a queued request with a fallback
// keeps for the next tier (see admit).
const minFallbackReserve = time.Millisecond

// admission is the result of admit.
type admission struct {
	l         lease
	queued    time.Duration
	predicted time.Duration
}

// admit waits for a slot on the tier and a replica (and its limiter). It
// returns a *SaturatedError, ErrCircuitOpen, ErrPredictedLate or the
// context's error.
// checkLate enables the deadline prediction (only when a fallback exists).
//
// A queued request waits at most QueueTimeout and never past its deadline.
// When the tier has a fallback for saturation, it gives up earlier, while
// the next tier's predicted TTFT (at least minFallbackReserve) still fits
// before the deadline: a request that waited out its whole deadline here
// would reach the next tier with no time left, and the player would get no
// line at all.
func (t *tierRT) admit(ctx context.Context, req *Request, now time.Time, checkLate bool) (admission, error) {
	var a admission
	deadline, hasDeadline := ctx.Deadline()
	p95 := t.predictTTFT()
	adm := Admission{Tokens: promptTokens(req) + t.maxTokensFor(req), Importance: req.Importance}

	t.mu.Lock()
	if t.hasRoom() && len(t.queue) == 0 {
		a.predicted = p95
		if checkLate && hasDeadline && p95 > deadline.Sub(now) {
			t.mu.Unlock()
			return a, ErrPredictedLate
		}
		l, noneHealthy := t.grab(req.AffinityKey, adm, now)
		if l.rep != nil {
			a.l = l
			t.mu.Unlock()
			return a, nil
		}
		if noneHealthy {
			t.mu.Unlock()
			return a, ErrCircuitOpen
		}
	}
	// The tier or its healthy replicas are full: estimate the wait, then
	// queue.
	wait := t.estimateWait()
	a.predicted = wait + p95
	if checkLate && hasDeadline && a.predicted > deadline.Sub(now) {
		t.mu.Unlock()
		return a, ErrPredictedLate
	}
	if len(t.queue) >= t.cfg.MaxQueued {
		t.mu.Unlock()
		return a, errQueueFull
	}
	w := &waiter{
		importance: req.Importance,
		round:      t.rounds[req.Importance],
		deadline:   maxInt64,
		seq:        t.seq,
		key:        req.AffinityKey,
		fair:       req.FairnessKey,
		adm:        adm,
		ready:      make(chan struct{}),
	}
	t.seq++
	if hasDeadline {
		w.deadline = deadline.UnixNano()
	}
	t.joinRound(w)
	heap.Push(&t.queue, w)
	t.st.queued.Add(1)
	// Arms the breaker wake-up when a replica with room is cooling down.
	t.dispatch(now)
	t.mu.Unlock()

	limit := t.cfg.QueueTimeout
	byDeadline := false // the wait ends at the request's deadline
	if hasDeadline {
		left := deadline.Sub(now)
		if t.next != nil && t.cfg.Overflow == OverflowDowngrade {
			left -= max(t.next.predictTTFT(), minFallbackReserve)
		} else {
			byDeadline = left <= limit
		}
		limit = min(limit, left)
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	var err error
	select {
	case <-w.ready:
		if w.err != nil {
			return a, w.err
		}
		a.l = w.l
		a.queued = t.now().Sub(now)
		return a, nil
	case <-timer.C:
		err = errQueueTimeout
		if byDeadline {
			// The context's own timer may not have fired yet.
			err = context.DeadlineExceeded
		}
	case <-ctx.Done():
		err = ctx.Err()
	}
	t.mu.Lock()
	if w.index >= 0 {
		heap.Remove(&t.queue, w.index)
		t.leaveRound(w)
		t.st.queued.Add(-1)
		t.mu.Unlock()
		return a, err
	}
	t.mu.Unlock()
	// dispatch settled the waiter as we gave up.
	<-w.ready
	if w.err != nil {
		return a, w.err
	}
	if ctx.Err() == nil {
		a.l = w.l
		a.queued = t.now().Sub(now)
		return a, nil
	}
	t.release(w.l, outcomeNeutral, LimitOutcome{}, t.now())
	return a, err
}

const maxInt64 = int64(^uint64(0) >> 1)

// Admission failures for lack of room. They are *SaturatedError values, so
// the breaker does not count them and errors.Is(err, ErrSaturated) holds.
var (
	errQueueFull    = &SaturatedError{Err: errors.New("tier queue full")}
	errQueueTimeout = &SaturatedError{Err: errors.New("not admitted within the queue timeout")}
)

// joinRound places w, about to be queued, in its fair round (see waiter).
// t.mu must be held.
func (t *tierRT) joinRound(w *waiter) {
	if w.fair == "" {
		return
	}
	k := fairKey{w.importance, w.fair}
	st := t.fair[k]
	if st == nil {
		st = &fairState{}
		t.fair[k] = st
	} else if st.last >= w.round {
		w.round = st.last + 1
	}
	st.last = w.round
	st.queued++
}

// leaveRound forgets w, just removed from the queue, in its key's state.
// t.mu must be held.
func (t *tierRT) leaveRound(w *waiter) {
	if w.fair == "" {
		return
	}
	k := fairKey{w.importance, w.fair}
	if st := t.fair[k]; st != nil {
		if st.queued--; st.queued <= 0 {
			delete(t.fair, k)
		}
	}
}

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
func (t *tierRT) release(l lease, o outcome, lo LimitOutcome, now time.Time) {
	if lim := l.rep.cfg.Limiter; lim != nil {
		lim.Release(l.adm, lo)
	}
	if opened := l.rep.st.br.done(now, l.probe, o); opened {
		t.logger.Warn("router: circuit breaker opened", "tier", t.cfg.Name, "replica", l.rep.cfg.Name, "cooldown", t.cfg.Breaker.Cooldown)
	}
	t.mu.Lock()
	t.inflight--
	l.rep.inflight--
	t.st.inflight.Add(-1)
	l.rep.st.inflight.Add(-1)
	t.dispatch(now)
	t.mu.Unlock()
	if l.rep.cfg.Limiter != nil {
		// The limiter may be shared with replicas of other tiers (one
		// engine serving several tiers through adapters): the room it
		// just got may be theirs to take.
		t.router.dispatchQueued(t, now)
	}
}

// dispatchQueued dispatches the current configuration's tiers other than
// except that have requests queued.
func (r *Router) dispatchQueued(except *tierRT, now time.Time) {
	for _, o := range r.cfg.Load().tiers {
		if o == except || o.st.queued.Load() == 0 {
			continue
		}
		o.mu.Lock()
		o.dispatch(now)
		o.mu.Unlock()
	}
}

// dispatch hands free slots to queued requests in queue order. When every
// replica's breaker is open it fails them all with ErrCircuitOpen, as it
// would fail a new request, so that they fall back now rather than at
// their timeout. When the healthy replicas are full and a replica with room
// is cooling down, it arms a timer that dispatches again when that replica
// lets its probe through. t.mu must be held.
func (t *tierRT) dispatch(now time.Time) {
	for len(t.queue) > 0 && t.hasRoom() {
		w := t.queue[0]
		l, noneHealthy := t.grab(w.key, w.adm, now)
		if l.rep == nil {
			if noneHealthy {
				for len(t.queue) > 0 {
					w := heap.Pop(&t.queue).(*waiter)
					t.leaveRound(w)
					t.st.queued.Add(-1)
					w.err = ErrCircuitOpen
					close(w.ready)
				}
				return
			}
			t.armWake(now)
			return
		}
		heap.Pop(&t.queue)
		t.leaveRound(w)
		if w.round > t.rounds[w.importance] {
			t.rounds[w.importance] = w.round
		}
		t.st.queued.Add(-1)
		w.l = l
		close(w.ready)
	}
}

// armWake schedules a dispatch for when the first open breaker of a
// replica with room half-opens. t.mu must be held.
func (t *tierRT) armWake(now time.Time) {
	var at time.Time
	for _, r := range t.replicas {
		if r.max > 0 && r.inflight >= r.max {
			continue
		}
		if u, ok := r.st.br.halfOpensAt(now); ok && (at.IsZero() || u.Before(at)) {
			at = u
		}
	}
	if at.IsZero() || (!t.wakeAt.IsZero() && !t.wakeAt.After(at)) {
		return // nothing to wait for, or a timer fires first
	}
	if t.wake != nil {
		t.wake.Stop()
	}
	t.wakeAt = at
	t.wake = time.AfterFunc(at.Sub(now), t.onWake)
}

func (t *tierRT) onWake() {
	t.mu.Lock()
	t.wakeAt = time.Time{}
	t.dispatch(t.now())
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
