package redisbus

import (
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Reclaiming: each durable subscription's claimer goroutine, started by
// Streams.Subscribe and stopped with the subscription, takes over entries
// that a dead consumer left pending (XAUTOCLAIM).

// claimer takes over entries that other consumers of a shared group took and
// never acknowledged (XAUTOCLAIM), e.g. because their instance died.
func (s *streamSub) claimer() {
	defer s.wg.Done()
	t := s.t
	tick := time.NewTicker(t.opts.ClaimInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		for _, key := range s.keysSnapshot() {
			start := "0-0"
			for s.ctx.Err() == nil {
				msgs, next, deleted, err := t.client.XAutoClaimWithDeleted(s.ctx, &redis.XAutoClaimArgs{
					Stream: key, Group: s.group, Consumer: t.opts.Consumer,
					MinIdle: t.opts.ClaimMinIdle, Start: start, Count: 100,
				}).Result()
				if err != nil {
					if s.ctx.Err() == nil && !errors.Is(err, redis.Nil) {
						t.health.fail(err)
					}
					break
				}
				t.health.ok()
				for range deleted {
					t.trimmed.Add(1)
				}
				for _, id := range deleted {
					s.Ack(t.topicOf(key), id)
				}
				for i := range msgs {
					if err := s.deliver(key, &msgs[i], true, true); err != nil {
						return
					}
				}
				if next == "0-0" || next == "" {
					break
				}
				start = next
			}
		}
	}
}
