package redisbus

import (
	"context"
	"errors"
	"time"

	"github.com/bodybroker/sdk/internal/backoff"
	"github.com/redis/go-redis/v9"
)

// Acknowledgements: subscriptions queue XACKs (streamSub.Ack); the
// transport's acker goroutine, started by NewStreams and stopped by Close,
// sends them in pipelined batches.

type ackKey struct{ key, id string }

type ackReq struct {
	sub *streamSub
	ackKey
}

// acker sends XACKs in batches, pipelined per stream.
func (t *Streams) acker() {
	defer t.wg.Done()
	batch := make([]ackReq, 0, 1024)
	bo := backoff.New(reconnectPolicy(t.opts.ReconnectMin, t.opts.ReconnectMax))
	for {
		select {
		case r := <-t.acks:
			batch = append(batch, r)
		case <-t.ctx.Done():
			// Flush what is queued, once, then stop.
		drain:
			for {
				select {
				case r := <-t.acks:
					batch = append(batch, r)
				default:
					break drain
				}
			}
			if len(batch) > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_ = t.sendAcks(ctx, batch)
				cancel()
			}
			return
		}
	more:
		for len(batch) < cap(batch) {
			select {
			case r := <-t.acks:
				batch = append(batch, r)
			default:
				break more
			}
		}
		for {
			ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
			err := t.sendAcks(ctx, batch)
			cancel()
			if err == nil || t.ctx.Err() != nil {
				bo.Reset()
				break
			}
			if !sleepCtx(t.ctx, bo.Next()) {
				break
			}
		}
		clear(batch)
		batch = batch[:0]
	}
}

func (t *Streams) sendAcks(ctx context.Context, batch []ackReq) error {
	type sk struct {
		key, group string
	}
	ids := map[sk][]string{}
	var order []sk
	for _, r := range batch {
		k := sk{r.key, r.sub.group}
		if _, ok := ids[k]; !ok {
			order = append(order, k)
		}
		ids[k] = append(ids[k], r.id)
	}
	pipe := t.client.Pipeline()
	for _, k := range order {
		pipe.XAck(ctx, k.key, k.group, ids[k]...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		var rerr redis.Error
		if !errors.As(err, &rerr) { // a reply error (NOGROUP after Close) is final
			t.health.fail(err)
			return err
		}
	}
	t.health.ok()
	t.acked.Add(uint64(len(batch)))
	for _, r := range batch {
		r.sub.done(r.ackKey)
	}
	return nil
}

// Ack implements eventbus.TransportSubscription. It waits while the
// acknowledgement buffer is full (Redis is slow or down), unless the
// subscription is closing: then the entry stays pending and is delivered
// again, so that a Close during an outage does not wait for Redis.
func (s *streamSub) Ack(topic, token string) {
	r := ackReq{sub: s, ackKey: ackKey{s.t.streamKey(topic), token}}
	select {
	case s.t.acks <- r:
		return
	default:
	}
	select {
	case s.t.acks <- r:
	case <-s.ctx.Done():
		s.done(r.ackKey)
	case <-s.t.ctx.Done():
	}
}

func (s *streamSub) done(k ackKey) {
	s.mu.Lock()
	delete(s.inflight, k)
	s.mu.Unlock()
}

// take marks an entry in flight; it reports false if it already was.
func (s *streamSub) take(k ackKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.inflight[k]; ok {
		return false
	}
	s.inflight[k] = struct{}{}
	return true
}
