package worldtime

// TimerID names a scheduled timer for [Clock.Cancel]. The zero TimerID
// names no timer.
type TimerID uint64

// timerHeap holds pending game-time timers, ordered by (due, seq): coarse
// buckets (2^32 game µs, about 72 game minutes, each) filled by appending;
// the current bucket, sorted once when game time reaches it and consumed
// from the front; and a small 4-ary min-heap for timers scheduled into the
// current bucket's window. Each step touches a short, cache-resident run
// however many timers are pending, where one big heap paid a cache miss
// per level (BenchmarkTimers); ordering is still exact, because a bucket
// is sorted before any of its timers is due. Game-time jumps (skips, sets) and scale changes
// cost nothing: keys are game time, and buckets are visited in order,
// empty ones never. Entries carry their callback, so firing one touches
// the heap and a 4-byte generation only (BenchmarkTimers).
//
// Cancel is lazy: it bumps the slot's generation, and the stale entry is
// dropped when it reaches the top of the heap (or when cancelled entries
// outnumber live ones, by a rebuild).
type timerHeap struct {
	run        []heapEnt // the current bucket, sorted; run[ri:] pending
	ri         int
	h          []heapEnt // timers scheduled into the current window
	horizon    int64     // every entry due before horizon is in h
	far        map[int64][]heapEnt
	farKeys    []int64 // min-heap of far's keys
	farN       int
	gens       []uint32 // per slot: the generation a live entry must carry
	free       []uint32
	spare      [][]heapEnt // consumed runs' arrays, for new buckets
	scratch    []heapEnt   // for sortBucket
	spareBytes int64       // their total size, at most maxSpareBytes
	seq        uint64
	dead       int // cancelled entries still in h or far
}

type heapEnt struct {
	due   int64
	seq   uint64
	every int64 // game µs between firings; 0 for a one-shot timer
	fn    func(due Instant)
	slot  uint32
	gen   uint32
}

const bucketShift = 32

// maxSpareBytes bounds the memory kept for reuse after timers fire.
const maxSpareBytes = 32 << 20

func (t *timerHeap) len() int { return len(t.h) + len(t.run) - t.ri + t.farN - t.dead }

func less(a, b *heapEnt) bool { return a.due < b.due || (a.due == b.due && a.seq < b.seq) }

// live reports whether e is still scheduled; with no cancellations
// outstanding every entry is, and the generation need not be read.
func (t *timerHeap) live(e *heapEnt) bool { return t.dead == 0 || t.gens[e.slot] == e.gen }

func (t *timerHeap) add(due Instant, every int64, fn func(Instant)) TimerID {
	var s uint32
	if n := len(t.free); n > 0 {
		s = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		s = uint32(len(t.gens))
		t.gens = append(t.gens, 1)
	}
	gen := t.gens[s]
	t.push(heapEnt{due: int64(due), every: every, fn: fn, slot: s, gen: gen})
	return TimerID(uint64(gen)<<32 | uint64(s))
}

func (t *timerHeap) push(e heapEnt) {
	t.seq++
	e.seq = t.seq
	if e.due < t.horizon {
		t.h = append(t.h, e)
		t.up(len(t.h) - 1)
		return
	}
	k := e.due >> bucketShift
	if t.far == nil {
		t.far = make(map[int64][]heapEnt)
	}
	b, ok := t.far[k]
	if !ok {
		t.pushKey(k)
		if n := len(t.spare); n > 0 { // reuse a consumed run's array
			b, t.spare = t.spare[n-1], t.spare[:n-1]
			t.spareBytes -= int64(cap(b)) * bytesPerEntry
		}
	}
	t.far[k] = append(b, e)
	t.farN++
}

func (t *timerHeap) pushKey(k int64) {
	t.farKeys = append(t.farKeys, k)
	i := len(t.farKeys) - 1
	for i > 0 {
		p := (i - 1) / 2
		if t.farKeys[p] <= k {
			break
		}
		t.farKeys[i] = t.farKeys[p]
		i = p
	}
	t.farKeys[i] = k
}

func (t *timerHeap) popKey() int64 {
	k := t.farKeys[0]
	n := len(t.farKeys) - 1
	last := t.farKeys[n]
	t.farKeys = t.farKeys[:n]
	i := 0
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && t.farKeys[c+1] < t.farKeys[c] {
			c++
		}
		if last <= t.farKeys[c] {
			break
		}
		t.farKeys[i] = t.farKeys[c]
		i = c
	}
	if n > 0 {
		t.farKeys[i] = last
	}
	return k
}

// migrate makes the earliest bucket the current run.
func (t *timerHeap) migrate() {
	k := t.popKey()
	b := t.far[k]
	delete(t.far, k)
	t.farN -= len(b)
	if k+1 > int64(^uint64(0)>>1)>>bucketShift {
		t.horizon = int64(^uint64(0) >> 1)
	} else {
		t.horizon = (k + 1) << bucketShift
	}
	b = t.sortBucket(b, k<<bucketShift)
	clear(t.run)
	if c := int64(cap(t.run)) * bytesPerEntry; c > 0 && t.spareBytes+c <= maxSpareBytes {
		t.spare = append(t.spare, t.run[:0])
		t.spareBytes += c
	}
	t.run, t.ri = b, 0
}

// sortBucket sorts a bucket's entries by (due, seq). Entries were appended
// in seq order, so a stable sort by due suffices: an LSD radix sort on the
// 32-bit offset within the bucket, skipping digits all entries share.
// The result is b or the scratch buffer; the other becomes scratch.
func (t *timerHeap) sortBucket(b []heapEnt, base int64) []heapEnt {
	if len(b) < 32 {
		for i := 1; i < len(b); i++ {
			for j := i; j > 0 && less(&b[j], &b[j-1]); j-- {
				b[j], b[j-1] = b[j-1], b[j]
			}
		}
		return b
	}
	if cap(t.scratch) < len(b) {
		t.scratch = make([]heapEnt, len(b))
	}
	tmp := t.scratch[:len(b)]
	for shift := 0; shift < bucketShift; shift += 8 {
		var count [256]int
		for i := range b {
			count[byte((b[i].due-base)>>shift)]++
		}
		if count[byte((b[0].due-base)>>shift)] == len(b) {
			continue // every entry has this digit
		}
		pos := 0
		for d, c := range count {
			count[d] = pos
			pos += c
		}
		for i := range b {
			d := byte((b[i].due - base) >> shift)
			tmp[count[d]] = b[i]
			count[d]++
		}
		b, tmp = tmp, b
	}
	clear(tmp)
	t.scratch = tmp[:0]
	return b
}

// top returns the earliest entry (live or not) and whether it is in the
// run (else in the heap); nil when the window is empty.
func (t *timerHeap) top() (*heapEnt, bool) {
	var r, h *heapEnt
	if t.ri < len(t.run) {
		r = &t.run[t.ri]
	}
	if len(t.h) > 0 {
		h = &t.h[0]
	}
	if r != nil && (h == nil || less(r, h)) {
		return r, true
	}
	return h, false
}

func (t *timerHeap) drop(inRun bool) {
	if inRun {
		t.run[t.ri] = heapEnt{}
		t.ri++
		return
	}
	t.pop()
}

func (t *timerHeap) cancel(id TimerID) bool {
	s, gen := uint32(id), uint32(id>>32)
	if id == 0 || int(s) >= len(t.gens) || t.gens[s] != gen {
		return false
	}
	t.release(s)
	t.dead++
	if t.dead > 1024 && t.dead > (len(t.h)+len(t.run)-t.ri+t.farN)/2 {
		t.rebuild()
	}
	return true
}

func (t *timerHeap) release(s uint32) {
	t.gens[s]++
	if t.gens[s] == 0 {
		t.gens[s] = 1
	}
	t.free = append(t.free, s)
}

// peek returns the earliest live due time in the current window, or, when
// the window is empty, a lower bound: the start of the earliest bucket,
// which is sorted only once game time reaches it (see popDue).
func (t *timerHeap) peek() (Instant, bool) {
	for {
		e, inRun := t.top()
		if e == nil {
			if len(t.farKeys) == 0 {
				return 0, false
			}
			return Instant(t.farKeys[0] << bucketShift), true
		}
		if t.live(e) {
			return Instant(e.due), true
		}
		t.drop(inRun)
		t.dead--
	}
}

// popDue removes the earliest timer if it is due at or before g and
// returns its callback; a periodic timer is re-armed (as if newly
// scheduled: after timers already due at its next time). A bucket becomes
// the window only when g reaches its start, so the window never runs far
// ahead of game time and new timers land in buckets, not in the heap.
func (t *timerHeap) popDue(g Instant) (func(Instant), Instant, bool) {
	for {
		due, ok := t.peek()
		if !ok || due > g {
			return nil, 0, false
		}
		if ep, _ := t.top(); ep == nil {
			t.migrate() // the bucket starting at due ≤ g
			continue
		}
		break
	}
	ep, inRun := t.top()
	e := *ep
	due := Instant(e.due)
	t.drop(inRun)
	if e.every > 0 {
		if next, ok := addSat(e.due, e.every); ok {
			e.due = next
			t.push(e)
			return e.fn, due, true
		}
	}
	t.release(e.slot)
	return e.fn, due, true
}

func (t *timerHeap) pop() {
	n := len(t.h) - 1
	t.h[0] = t.h[n]
	t.h[n] = heapEnt{}
	t.h = t.h[:n]
	if n > 0 {
		t.down(0)
	}
}

func (t *timerHeap) up(i int) {
	e := t.h[i]
	for i > 0 {
		p := (i - 1) / 4
		if !less(&e, &t.h[p]) {
			break
		}
		t.h[i] = t.h[p]
		i = p
	}
	t.h[i] = e
}

func (t *timerHeap) down(i int) {
	n := len(t.h)
	e := t.h[i]
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for j := c + 1; j < c+4 && j < n; j++ {
			if less(&t.h[j], &t.h[m]) {
				m = j
			}
		}
		if !less(&t.h[m], &e) {
			break
		}
		t.h[i] = t.h[m]
		i = m
	}
	t.h[i] = e
}

func (t *timerHeap) rebuild() {
	t.h = t.compact(t.h)
	t.run = t.compact(t.run[t.ri:])
	t.ri = 0
	for k, b := range t.far {
		t.farN -= len(b)
		b = t.compact(b)
		t.farN += len(b)
		t.far[k] = b // an empty bucket stays until migrated
	}
	t.dead = 0
	for i := len(t.h)/4 + 1; i >= 0; i-- {
		if i < len(t.h) {
			t.down(i)
		}
	}
}

func (t *timerHeap) compact(es []heapEnt) []heapEnt {
	live := es[:0]
	for i := range es {
		if t.live(&es[i]) {
			live = append(live, es[i])
		}
	}
	clear(es[len(live):])
	return live
}

// bytes estimates the memory held for timers: heap and bucket entries,
// and slot generations.
func (t *timerHeap) bytes() int64 {
	return int64(cap(t.h)+cap(t.run)+cap(t.scratch)+t.farN)*bytesPerEntry + t.spareBytes + int64(cap(t.gens))*4
}

// bytesPerEntry is the size of a heap entry; a pending timer costs that
// plus a 4-byte generation, excluding the caller's closure.
const bytesPerEntry = 40
