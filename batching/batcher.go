package batching

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bodybroker/sdk/latency"
)

// Errors returned by [Batcher].
var (
	// ErrFull means the queue had no room and the policy is FullReject.
	ErrFull = errors.New("batching: queue full")
	// ErrTooLarge means one item is larger than MaxBytes or
	// MaxQueuedBytes: it could never be batched.
	ErrTooLarge = errors.New("batching: item larger than a batch")
	// ErrClosed is returned by Add after Shutdown or Close began, by a
	// second Shutdown or Close, and by Add for items that Close dropped
	// before they were flushed.
	ErrClosed = errors.New("batching: closed")
	// ErrFlushPanicked is the error of a batch whose Flush panicked; the
	// panic value is in the message.
	ErrFlushPanicked = errors.New("batching: flush panicked")
)

// Defaults applied by [NewBatcher] to zero-valued [BatcherOptions] fields.
const (
	DefaultMaxBatchSize = 64
	DefaultMaxDelay     = 10 * time.Millisecond
)

// FullPolicy is what [Batcher.Add] does when the queue is full.
type FullPolicy int

const (
	// FullBlock (the default) waits until the queue has room or the
	// context ends.
	FullBlock FullPolicy = iota
	// FullReject returns ErrFull at once.
	FullReject
)

// BatcherOptions configures a [Batcher]. Flush is required; zero values of
// the other fields mean the documented defaults.
type BatcherOptions[T any] struct {
	// Flush sends one batch (an embeddings call, a moderation call, a TTS
	// request). Its error is returned by the Add of every item in the
	// batch. To hand results back per item, let T carry where they go (a
	// pointer, a channel) and fill it in Flush. ctx is cancelled by
	// Close. The batch slice must not be kept after Flush returns.
	Flush func(ctx context.Context, batch []T) error

	// MaxSize is the most items in a batch; a batch that reaches it is
	// flushed at once. Default 64.
	MaxSize int
	// MaxBytes, when positive, is the most bytes (by Size) in a batch: an
	// item that would take a batch past it starts the next batch.
	MaxBytes int
	// Size is an item's size in bytes, for MaxBytes and MaxQueuedBytes;
	// required when either is set.
	Size func(T) int
	// MaxDelay is the longest the first item of a batch waits for others
	// before the batch is flushed anyway. Default 10 ms.
	MaxDelay time.Duration

	// MaxQueued bounds the items waiting to be flushed (in batches not yet
	// handed to Flush). Default 4 × MaxSize. MaxQueuedBytes, when
	// positive, bounds their bytes too.
	MaxQueued      int
	MaxQueuedBytes int
	// Full is what Add does when the queue is full: block (the default)
	// or reject with ErrFull. The queue never drops items it accepted.
	Full FullPolicy

	// MaxConcurrentFlushes bounds the batches being flushed at once.
	// Default 1: batches are flushed one after another, in order.
	MaxConcurrentFlushes int

	// Now is the clock for the Wait and Flush statistics; nil means
	// time.Now. Delays use the standard library's timers.
	Now func() time.Time
}

// Batcher groups items into batches for APIs that take them: a batch is
// flushed when it reaches MaxSize items (or MaxBytes), or MaxDelay after
// its first item arrived, whichever comes first. Items wait in a bounded
// queue (MaxQueued, MaxQueuedBytes) whose full policy is explicit.
//
// A Batcher is safe for concurrent use. It runs a goroutine per batch
// being flushed (at most MaxConcurrentFlushes) and a timer for the open
// batch; [Batcher.Shutdown] flushes what is queued and waits for them,
// [Batcher.Close] drops what is queued and cancels flushes in progress.
type Batcher[T any] struct {
	opts   BatcherOptions[T]
	ctx    context.Context // Flush's; cancelled by Close
	cancel context.CancelFunc

	mu          sync.Mutex
	cur         *batch[T] // the open batch; nil when none
	timer       *time.Timer
	ready       []*batch[T] // sealed, waiting for a flush slot
	queued      int         // items in cur and ready
	queuedBytes int
	flying      int
	room        chan struct{} // closed when the queue gains room; nil when nobody waits
	shut        bool          // Shutdown or Close began: no more Adds
	killed      bool          // Close began
	drained     chan struct{} // closed when shut and nothing is left
	wg          sync.WaitGroup

	added, rejected, batches, flushed, failed  atomic.Uint64
	bySize, byBytes, byDelay, byShutdown, lost atomic.Uint64
	wait, flushTime                            latency.Histogram
}

type batch[T any] struct {
	items   []T
	bytes   int
	born    time.Time
	trigger *atomic.Uint64 // the stats counter of what sealed it
	done    chan struct{}
	err     error
}

// NewBatcher returns a Batcher configured by opts; an invalid field gives an
// [*OptionsError]. Shut it down with Shutdown or Close.
func NewBatcher[T any](opts BatcherOptions[T]) (*Batcher[T], error) {
	if opts.Flush == nil {
		return nil, optErr("Flush", "nil")
	}
	for _, f := range []struct {
		name string
		neg  bool
	}{
		{"MaxSize", opts.MaxSize < 0}, {"MaxBytes", opts.MaxBytes < 0}, {"MaxDelay", opts.MaxDelay < 0},
		{"MaxQueued", opts.MaxQueued < 0}, {"MaxQueuedBytes", opts.MaxQueuedBytes < 0},
		{"MaxConcurrentFlushes", opts.MaxConcurrentFlushes < 0},
	} {
		if f.neg {
			return nil, optErr(f.name, "negative")
		}
	}
	if opts.Full != FullBlock && opts.Full != FullReject {
		return nil, optErr("Full", "invalid value %d", opts.Full)
	}
	if (opts.MaxBytes > 0 || opts.MaxQueuedBytes > 0) && opts.Size == nil {
		return nil, optErr("Size", "nil, but MaxBytes or MaxQueuedBytes is set")
	}
	if opts.MaxSize == 0 {
		opts.MaxSize = DefaultMaxBatchSize
	}
	if opts.MaxDelay == 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	if opts.MaxQueued == 0 {
		opts.MaxQueued = 4 * opts.MaxSize
	}
	if opts.MaxQueued < opts.MaxSize {
		return nil, optErr("MaxQueued", "%d is below MaxSize %d: a full batch could never form", opts.MaxQueued, opts.MaxSize)
	}
	if opts.MaxConcurrentFlushes == 0 {
		opts.MaxConcurrentFlushes = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	b := &Batcher[T]{opts: opts, drained: make(chan struct{})}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b, nil
}

// Add queues item and waits until its batch has been flushed, returning
// Flush's error for that batch. When the queue is full it blocks or
// returns [ErrFull], as the Full policy says. If ctx ends first, Add
// returns ctx's error; an item already queued is still flushed with its
// batch (an item is never queued once ctx has ended). After Shutdown or Close began, Add returns [ErrClosed].
func (b *Batcher[T]) Add(ctx context.Context, item T) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	size := 0
	if b.opts.Size != nil {
		size = b.opts.Size(item)
	}
	if (b.opts.MaxBytes > 0 && size > b.opts.MaxBytes) || (b.opts.MaxQueuedBytes > 0 && size > b.opts.MaxQueuedBytes) {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	b.mu.Lock()
	for {
		if b.shut {
			b.mu.Unlock()
			return ErrClosed
		}
		if b.queued < b.opts.MaxQueued && (b.opts.MaxQueuedBytes == 0 || b.queuedBytes+size <= b.opts.MaxQueuedBytes) {
			break
		}
		if b.opts.Full == FullReject {
			b.mu.Unlock()
			b.rejected.Add(1)
			return ErrFull
		}
		if b.room == nil {
			b.room = make(chan struct{})
		}
		room := b.room
		b.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
		b.mu.Lock()
	}
	if b.cur != nil && b.opts.MaxBytes > 0 && b.cur.bytes+size > b.opts.MaxBytes {
		b.seal(&b.byBytes)
	}
	if b.cur == nil {
		bt := &batch[T]{items: make([]T, 0, min(b.opts.MaxSize, 64)), born: b.opts.Now(), done: make(chan struct{})}
		b.cur = bt
		b.timer = time.AfterFunc(b.opts.MaxDelay, func() { b.onDelay(bt) })
	}
	bt := b.cur
	bt.items = append(bt.items, item)
	bt.bytes += size
	b.queued++
	b.queuedBytes += size
	b.added.Add(1)
	if len(bt.items) >= b.opts.MaxSize {
		b.seal(&b.bySize)
	}
	b.startFlushes()
	b.mu.Unlock()
	select {
	case <-bt.done:
		return bt.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// seal closes the open batch and queues it for a flush. b.mu must be held.
func (b *Batcher[T]) seal(trigger *atomic.Uint64) {
	b.timer.Stop()
	b.cur.trigger = trigger
	b.ready = append(b.ready, b.cur)
	b.cur = nil
}

func (b *Batcher[T]) onDelay(bt *batch[T]) {
	b.mu.Lock()
	if b.cur == bt {
		b.seal(&b.byDelay)
		b.startFlushes()
	}
	b.mu.Unlock()
}

// startFlushes hands ready batches to free flush slots. b.mu must be held.
func (b *Batcher[T]) startFlushes() {
	for b.flying < b.opts.MaxConcurrentFlushes && len(b.ready) > 0 {
		bt := b.ready[0]
		b.ready[0] = nil
		b.ready = b.ready[1:]
		b.flying++
		b.queued -= len(bt.items)
		b.queuedBytes -= bt.bytes
		if b.room != nil {
			close(b.room)
			b.room = nil
		}
		b.wg.Add(1)
		go b.flush(bt)
	}
	b.checkDrained()
}

// checkDrained signals Shutdown once nothing is left. b.mu must be held.
func (b *Batcher[T]) checkDrained() {
	if b.shut && b.cur == nil && len(b.ready) == 0 && b.flying == 0 {
		select {
		case <-b.drained:
		default:
			close(b.drained)
		}
	}
}

func (b *Batcher[T]) flush(bt *batch[T]) {
	defer b.wg.Done()
	start := b.opts.Now()
	b.wait.Record(start.Sub(bt.born))
	bt.trigger.Add(1)
	bt.err = b.call(bt.items)
	b.flushTime.Record(b.opts.Now().Sub(start))
	b.batches.Add(1)
	b.flushed.Add(uint64(len(bt.items)))
	if bt.err != nil {
		b.failed.Add(1)
	}
	clear(bt.items) // let the items go; the callers hold their own
	close(bt.done)
	b.mu.Lock()
	b.flying--
	b.startFlushes()
	b.mu.Unlock()
}

func (b *Batcher[T]) call(items []T) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrFlushPanicked, p)
		}
	}()
	return b.opts.Flush(b.ctx, items)
}

// Shutdown stops taking items, flushes the open batch at once and waits,
// within ctx, for every queued batch to be flushed. When ctx ends first it
// closes the Batcher as Close does and returns ctx's error. A second
// Shutdown, or Shutdown after Close, returns [ErrClosed].
func (b *Batcher[T]) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	if b.shut {
		b.mu.Unlock()
		return ErrClosed
	}
	b.shut = true
	if b.cur != nil {
		b.seal(&b.byShutdown)
	}
	if b.room != nil {
		close(b.room)
		b.room = nil
	}
	b.startFlushes()
	b.mu.Unlock()
	select {
	case <-b.drained:
		b.wg.Wait()
		b.cancel()
		return nil
	case <-ctx.Done():
		b.kill()
		return ctx.Err()
	}
}

// Close stops now: queued items are dropped (their Add returns
// [ErrClosed]), flushes in progress have their context cancelled, and
// Close waits for them to return. Close after Shutdown finished returns
// nil and does nothing more; a second Close returns [ErrClosed].
func (b *Batcher[T]) Close() error {
	b.mu.Lock()
	if b.killed {
		b.mu.Unlock()
		return ErrClosed
	}
	b.mu.Unlock()
	b.kill()
	return nil
}

func (b *Batcher[T]) kill() {
	b.mu.Lock()
	b.shut, b.killed = true, true
	pending := b.ready
	if b.cur != nil {
		b.timer.Stop()
		pending = append(pending, b.cur)
		b.cur = nil
	}
	b.ready = nil
	b.queued, b.queuedBytes = 0, 0
	if b.room != nil {
		close(b.room)
		b.room = nil
	}
	b.checkDrained()
	b.mu.Unlock()
	b.cancel()
	for _, bt := range pending {
		b.lost.Add(uint64(len(bt.items)))
		bt.err = ErrClosed
		close(bt.done)
	}
	b.wg.Wait()
}

// BatcherStats is a snapshot of a [Batcher].
type BatcherStats struct {
	// Added counts items accepted; Rejected those refused with ErrFull;
	// Dropped those Close discarded before a flush.
	Added, Rejected, Dropped uint64
	// Queued and QueuedBytes are the items waiting for a flush now;
	// Flushing the batches being flushed.
	Queued, QueuedBytes, Flushing int
	// Batches counts flushes, Items the items they carried, Failed the
	// flushes that returned an error.
	Batches, Items, Failed uint64
	// What sealed each flushed batch: MaxSize, MaxBytes, MaxDelay or
	// Shutdown.
	BySize, ByBytes, ByDelay, ByShutdown uint64
	// Wait is the time from a batch's first item to its flush; Flush the
	// time Flush took.
	Wait  latency.Summary
	Flush latency.Summary
}

// Stats returns a snapshot of the Batcher.
func (b *Batcher[T]) Stats() BatcherStats {
	b.mu.Lock()
	st := BatcherStats{Queued: b.queued, QueuedBytes: b.queuedBytes, Flushing: b.flying}
	b.mu.Unlock()
	st.Added, st.Rejected, st.Dropped = b.added.Load(), b.rejected.Load(), b.lost.Load()
	st.Batches, st.Items, st.Failed = b.batches.Load(), b.flushed.Load(), b.failed.Load()
	st.BySize, st.ByBytes, st.ByDelay, st.ByShutdown = b.bySize.Load(), b.byBytes.Load(), b.byDelay.Load(), b.byShutdown.Load()
	st.Wait, st.Flush = b.wait.Summary(), b.flushTime.Summary()
	return st
}
