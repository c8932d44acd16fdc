package redisbus

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/internal/backoff"
	"github.com/redis/go-redis/v9"
)

// BatchOptions tune how publishes are pipelined.
type BatchOptions struct {
	// Linger is how long a flusher waits for more publishes before sending
	// a batch that is not full. 0 sends at once whatever has queued up
	// meanwhile, which already batches under load, since publishes queue
	// while the previous round trip is in flight.
	Linger time.Duration
	// MaxBatch caps the events per pipeline (default 512).
	MaxBatch int
	// Flushers is the number of pipelines in flight at once (default 2).
	Flushers int
	// Timeout bounds one pipeline round trip (default 5s).
	Timeout time.Duration
}

func (o BatchOptions) withDefaults() BatchOptions {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 512
	}
	if o.Flushers <= 0 {
		o.Flushers = 2
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	return o
}

type pubReq struct {
	evs  []eventbus.Event
	done chan pubResult
}

// pubResult is a request's outcome: the first error among its events'
// commands, and whether Redis executed none of them and said to try again
// (LOADING), so that the whole request may be sent again without
// duplicating or reordering anything.
type pubResult struct {
	err   error
	again bool
}

var reqPool = sync.Pool{New: func() any { return &pubReq{done: make(chan pubResult, 1)} }}

// batcher pipelines publishes: each Publish call queues a request, and
// flusher goroutines send whatever has queued in one pipeline.
type batcher struct {
	client  redis.UniversalClient
	opts    BatchOptions
	add     func(ctx context.Context, pipe redis.Pipeliner, ev *eventbus.Event, data []byte) // queues the one command for an event
	health  *health
	retry   backoff.Policy // between tries of a request Redis did not execute
	now     func() time.Time
	reqs    chan *pubReq
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closeMu sync.RWMutex
	closed  bool

	published atomic.Uint64
	batches   atomic.Uint64
}

func newBatcher(client redis.UniversalClient, opts BatchOptions, h *health, retry backoff.Policy, now func() time.Time,
	add func(ctx context.Context, pipe redis.Pipeliner, ev *eventbus.Event, data []byte)) *batcher {
	opts = opts.withDefaults()
	b := &batcher{client: client, opts: opts, add: add, health: h, retry: retry, now: now, reqs: make(chan *pubReq, 4*opts.MaxBatch)}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.wg.Add(opts.Flushers)
	for i := 0; i < opts.Flushers; i++ {
		go b.flusher()
	}
	return b
}

// publish sends evs in one pipeline (with other publishers' events) and
// waits for Redis's answer. When Redis executed none of them and asked to
// try again later (LOADING after a restart), it sends them again with
// backoff while ctx's deadline leaves time (without a deadline: for up to
// BatchOptions.Timeout), and returns Redis's error when it gives up (joined
// with ctx's error if ctx ended during a try).
func (b *batcher) publish(ctx context.Context, evs []eventbus.Event) error {
	var start time.Time
	var refused error
	for n := 1; ; n++ {
		res := b.send(ctx, evs)
		if res.err == nil {
			return nil
		}
		if !res.again {
			return withRefusal(res.err, refused)
		}
		refused = res.err
		if n == 1 {
			start = time.Now()
		}
		if !retryWait(ctx, b.retry, n, start, b.opts.Timeout) {
			return res.err
		}
	}
}

// send makes one try of publish.
func (b *batcher) send(ctx context.Context, evs []eventbus.Event) pubResult {
	if len(evs) == 0 {
		return pubResult{}
	}
	r := reqPool.Get().(*pubReq)
	r.evs = evs
	b.closeMu.RLock()
	if b.closed {
		b.closeMu.RUnlock()
		reqPool.Put(r)
		return pubResult{err: eventbus.ErrClosed}
	}
	select {
	case b.reqs <- r:
		b.closeMu.RUnlock()
	case <-ctx.Done():
		b.closeMu.RUnlock()
		reqPool.Put(r)
		return pubResult{err: ctx.Err()}
	}
	select {
	case res := <-r.done:
		r.evs = nil
		reqPool.Put(r)
		return res
	case <-ctx.Done():
		// The flusher still owns r and will answer into its buffered done
		// channel; r is not reused. The events may still be published.
		return pubResult{err: ctx.Err()}
	}
}

func (b *batcher) flusher() {
	defer b.wg.Done()
	batch := make([]*pubReq, 0, b.opts.MaxBatch)
	for {
		var r *pubReq
		var ok bool
		select {
		case r, ok = <-b.reqs:
		case <-b.ctx.Done():
			// Drain what is still queued before leaving.
			select {
			case r, ok = <-b.reqs:
			default:
				return
			}
		}
		if !ok {
			return
		}
		batch = append(batch[:0], r)
		n := len(r.evs)
		var linger <-chan time.Time
		var timer *time.Timer
		if b.opts.Linger > 0 {
			timer = time.NewTimer(b.opts.Linger)
			linger = timer.C
		}
	collect:
		for n < b.opts.MaxBatch {
			select {
			case r, ok := <-b.reqs:
				if !ok {
					break collect
				}
				batch = append(batch, r)
				n += len(r.evs)
			default:
				if linger == nil {
					break collect
				}
				select {
				case r, ok := <-b.reqs:
					if !ok {
						break collect
					}
					batch = append(batch, r)
					n += len(r.evs)
				case <-linger:
					linger = nil
					break collect
				}
			}
		}
		if timer != nil {
			timer.Stop()
		}
		b.flush(batch, n)
		clear(batch)
	}
}

func (b *batcher) flush(batch []*pubReq, n int) {
	if n == 0 {
		for _, r := range batch {
			r.done <- pubResult{}
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.Timeout)
	defer cancel()
	pipe := b.client.Pipeline()
	now := b.now()
	for _, r := range batch {
		for i := range r.evs {
			b.add(ctx, pipe, &r.evs[i], encode(&r.evs[i], now))
		}
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		b.health.fail(err)
	} else {
		b.health.ok()
		b.published.Add(uint64(n))
		b.batches.Add(1)
	}
	// One command per event, in order: each request gets the first error
	// among its own, and may be tried again only if Redis executed none of
	// them.
	k := 0
	for _, r := range batch {
		res := pubResult{again: true}
		for range r.evs {
			e := err
			if k < len(cmds) {
				e = cmds[k].Err()
			}
			if e != nil && res.err == nil {
				res.err = e
			}
			res.again = res.again && tryAgain(e)
			k++
		}
		res.again = res.again && res.err != nil
		r.done <- res
	}
}

func (b *batcher) close() {
	b.closeMu.Lock()
	b.closed = true
	b.closeMu.Unlock()
	b.cancel()
	b.wg.Wait()
}
