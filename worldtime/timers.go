package worldtime

// TimerID names a scheduled timer for [Clock.Cancel]. The zero TimerID
// names no timer.
type TimerID uint64

// timerHeap holds pending game-time timers: a 4-ary min-heap ordered by
// (due, seq) over compact entries, and a slab of callbacks. Cancel is
// lazy: it frees the slab slot and bumps its generation, and the heap
// entry is dropped when it reaches the top (or when cancelled entries
// outnumber live ones, by a rebuild). A heap beat a hierarchical wheel
// here because game time jumps (skips, sets) and scale changes would make
// a wheel cascade or re-bucket, while a heap is indifferent to both; see
// BenchmarkTimers for the cost per timer.
type timerHeap struct {
	h     []heapEnt
	slots []timerSlot
	free  []uint32
	seq   uint64
	dead  int // cancelled entries still in h
}

type heapEnt struct {
	due  int64
	seq  uint64
	slot uint32
	gen  uint32
}

type timerSlot struct {
	every int64 // game µs between firings; 0 for a one-shot timer
	fn    func(due Instant)
	gen   uint32
	live  bool
}

func (t *timerHeap) len() int { return len(t.h) - t.dead }

func less(a, b *heapEnt) bool { return a.due < b.due || (a.due == b.due && a.seq < b.seq) }

func (t *timerHeap) add(due Instant, every int64, fn func(Instant)) TimerID {
	var s uint32
	if n := len(t.free); n > 0 {
		s = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		s = uint32(len(t.slots))
		t.slots = append(t.slots, timerSlot{})
	}
	sl := &t.slots[s]
	sl.gen++
	sl.every, sl.fn, sl.live = every, fn, true
	t.push(heapEnt{due: int64(due), slot: s, gen: sl.gen})
	return TimerID(uint64(sl.gen)<<32 | uint64(s))
}

func (t *timerHeap) push(e heapEnt) {
	t.seq++
	e.seq = t.seq
	t.h = append(t.h, e)
	t.up(len(t.h) - 1)
}

func (t *timerHeap) cancel(id TimerID) bool {
	s, gen := uint32(id), uint32(id>>32)
	if int(s) >= len(t.slots) || t.slots[s].gen != gen || !t.slots[s].live {
		return false
	}
	t.release(s)
	t.dead++
	if t.dead > 1024 && t.dead > len(t.h)/2 {
		t.rebuild()
	}
	return true
}

func (t *timerHeap) release(s uint32) {
	t.slots[s] = timerSlot{gen: t.slots[s].gen + 1}
	t.free = append(t.free, s)
}

// peek returns the earliest live due time.
func (t *timerHeap) peek() (Instant, bool) {
	for len(t.h) > 0 {
		e := &t.h[0]
		if sl := &t.slots[e.slot]; sl.live && sl.gen == e.gen {
			return Instant(e.due), true
		}
		t.pop()
		t.dead--
	}
	return 0, false
}

// popDue removes the earliest timer if it is due at or before g and
// returns its callback; a periodic timer is re-armed first.
func (t *timerHeap) popDue(g Instant) (func(Instant), Instant, bool) {
	due, ok := t.peek()
	if !ok || due > g {
		return nil, 0, false
	}
	e := t.h[0]
	sl := &t.slots[e.slot]
	fn := sl.fn
	if sl.every > 0 {
		next, ok := addSat(e.due, sl.every)
		if ok {
			e.due = next
			t.h[0] = e
			t.seq++
			t.h[0].seq = t.seq
			t.down(0)
			return fn, due, true
		}
	}
	t.pop()
	t.release(e.slot)
	return fn, due, true
}

func (t *timerHeap) pop() {
	n := len(t.h) - 1
	t.h[0] = t.h[n]
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
	live := t.h[:0]
	for _, e := range t.h {
		if sl := &t.slots[e.slot]; sl.live && sl.gen == e.gen {
			live = append(live, e)
		}
	}
	clear(t.h[len(live):])
	t.h = live
	t.dead = 0
	for i := len(t.h)/4 + 1; i >= 0; i-- {
		if i < len(t.h) {
			t.down(i)
		}
	}
}

// bytesPerTimer is the heap's steady-state memory per pending timer (heap
// entry plus slot), excluding the caller's closure.
const bytesPerTimer = 24 + 24
