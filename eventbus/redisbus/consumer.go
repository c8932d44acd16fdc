package redisbus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/internal/backoff"
	"github.com/redis/go-redis/v9"
)

// The consumer side of one subscription: its consumer groups and its reader
// goroutine (XREADGROUP), started by Streams.Subscribe and stopped by
// streamSub.Close or Streams.Close.

// streamSub is one subscription's consumer-group reader.
type streamSub struct {
	t       *Streams
	req     eventbus.SubscribeRequest
	pat     eventbus.Pattern
	sink    eventbus.Sink
	group   string
	private bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	keys     []string
	inflight map[ackKey]struct{} // delivered to the sink and not yet acknowledged
	closed   atomic.Bool
}

func (s *streamSub) ensureGroup(ctx context.Context, key, start string) error {
	err := s.t.client.XGroupCreateMkStream(ctx, key, s.group, start).Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		s.t.health.fail(err)
		return err
	}
	s.t.health.ok()
	return nil
}

func (s *streamSub) keysSnapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.keys...)
}

// Close implements eventbus.TransportSubscription: it stops the reader;
// entries not yet acknowledged stay pending in the group. A private group is
// destroyed.
func (s *streamSub) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.cancel()
	s.wg.Wait()
	if s.private {
		s.destroyGroups()
	}
	return nil
}

func (s *streamSub) destroyGroups() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, key := range s.keysSnapshot() {
		_ = s.t.client.XGroupDestroy(ctx, key, s.group).Err()
	}
}

// reader reads the subscription's streams with XREADGROUP. It first reads
// this consumer's own pending entries (left by a crash or a Close), and does
// so again after every error, since an outage can lose replies; then it reads
// new entries with ">".
func (s *streamSub) reader() {
	defer s.wg.Done()
	t := s.t
	bo := backoff.New(reconnectPolicy(t.opts.ReconnectMin, t.opts.ReconnectMax))
	pending := map[string]string{} // key → cursor in the pending list
	resetPending := func() {
		clear(pending)
		for _, k := range s.keysSnapshot() {
			pending[k] = "0"
		}
	}
	resetPending()
	for s.ctx.Err() == nil {
		var args []string
		block := t.opts.Block
		if len(pending) > 0 {
			block = -1
			keys := make([]string, 0, len(pending))
			for k := range pending {
				keys = append(keys, k)
			}
			args = append(args, keys...)
			for _, k := range keys {
				args = append(args, pending[k])
			}
		} else {
			keys := s.keysSnapshot()
			if len(keys) == 0 {
				if !sleepCtx(s.ctx, t.opts.DiscoverInterval) {
					return
				}
				continue
			}
			args = append(args, keys...)
			for range keys {
				args = append(args, ">")
			}
		}
		res, err := s.xreadgroup(s.ctx, args, block)
		if errors.Is(err, redis.Nil) {
			t.health.ok()
			continue
		}
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			t.health.fail(err)
			if strings.HasPrefix(err.Error(), "NOGROUP") {
				// The stream or group is gone (Redis lost its data):
				// recreate it from the start.
				for _, k := range s.keysSnapshot() {
					_ = s.ensureGroup(s.ctx, k, "0")
				}
			}
			if !sleepCtx(s.ctx, bo.Next()) {
				return
			}
			resetPending()
			continue
		}
		t.health.ok()
		bo.Reset()
		inPending := len(pending) > 0
		for _, xs := range res {
			if inPending {
				if len(xs.Messages) == 0 {
					delete(pending, xs.Stream)
					continue
				}
				pending[xs.Stream] = xs.Messages[len(xs.Messages)-1].ID
			}
			for i := range xs.Messages {
				if err := s.deliver(xs.Stream, &xs.Messages[i], inPending, false); err != nil {
					return
				}
			}
		}
	}
}

// deliver hands one entry to the sink. It returns an error only when the
// subscription is closing.
func (s *streamSub) deliver(key string, m *redis.XMessage, redelivered, reclaimed bool) error {
	t := s.t
	k := ackKey{key, m.ID}
	if m.Values == nil {
		// Pending but trimmed away by MAXLEN: nothing to deliver.
		t.trimmed.Add(1)
		s.Ack(t.topicOf(key), m.ID)
		return nil
	}
	data, ok := payloadField(m.Values)
	var ev eventbus.Event
	var pub time.Time
	var err error
	if ok {
		ev, pub, err = decode(data)
	}
	if !ok || err != nil {
		t.health.fail(fmt.Errorf("redisbus: dropping malformed entry %s in %s", m.ID, key))
		s.Ack(t.topicOf(key), m.ID)
		return nil
	}
	if !s.take(k) {
		return nil // already queued or being handled here
	}
	ev.Topic = t.topicOf(key)
	d := eventbus.Delivery{Event: ev, PublishedAt: pub, Token: m.ID, Redelivered: redelivered || reclaimed}
	if err := s.sink.Deliver(s.ctx, &d); err != nil {
		s.done(k)
		return err
	}
	t.received.Add(1)
	if reclaimed {
		t.reclaimed.Add(1)
	} else if redelivered {
		t.redelivered.Add(1)
	}
	return nil
}
