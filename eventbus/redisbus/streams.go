package redisbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/internal/backoff"
	"github.com/redis/go-redis/v9"
)

// StreamsOptions configure the Redis Streams transport. Zero fields take the
// defaults in parentheses.
type StreamsOptions struct {
	// Prefix starts every key ("bb:"). Topic T lives in the stream
	// Prefix+"s:"+T; the set Prefix+"topics" lists the topics for pattern
	// subscriptions. On Redis Cluster, put a hash tag in the prefix
	// ("{bb}:") so that one XREADGROUP can read several topics.
	Prefix string
	// MaxLen bounds each stream with XADD MAXLEN ~ (100000): it is the
	// history and replay horizon.
	MaxLen int64
	// Batch tunes publish pipelining.
	Batch BatchOptions
	// ReadCount is the COUNT of each XREADGROUP (256).
	ReadCount int64
	// Block is the BLOCK of each XREADGROUP (500ms); it also bounds how
	// long closing a subscription waits for its reader.
	Block time.Duration
	// Consumer names this instance within consumer groups
	// ("<hostname>-<pid>-<random>"). Give it a stable value to let a
	// restarted instance take back its own pending entries at once.
	Consumer string
	// ClaimInterval (5s) is how often durable subscriptions look for
	// entries that another consumer took and has not acknowledged for
	// ClaimMinIdle (30s), and take them over (XAUTOCLAIM).
	ClaimInterval time.Duration
	ClaimMinIdle  time.Duration
	// DiscoverInterval is how often pattern subscriptions look for new
	// topics (1s). Events published before discovery are not lost: groups
	// on newly found topics start at the beginning of the stream.
	DiscoverInterval time.Duration
	// ClockSkew is how far publishers' clocks may be from Redis's when
	// replaying AfterID or FromTime (5s).
	ClockSkew time.Duration
	// ReconnectMin and ReconnectMax bound the backoff between retries while
	// Redis is unreachable (50ms, 2s). Each wait is random, between
	// ReconnectMin and a ceiling that starts at twice ReconnectMin and
	// doubles up to ReconnectMax, so that the servers of a studio do not
	// reconnect in lockstep. Publish uses the same backoff to retry events
	// Redis refused without executing them (LOADING while a restarted Redis
	// replays its AOF, MASTERDOWN, TRYAGAIN), while its ctx's deadline leaves
	// time (without a deadline, for up to Batch.Timeout).
	ReconnectMin, ReconnectMax time.Duration
	// OnError is told about every error no caller sees (receive, ack,
	// claim). When nil, outages and their end are logged to Logger.
	OnError func(error)
	// Logger is used when OnError is nil (nil: slog.Default()).
	Logger *slog.Logger
	// Now is the transport's clock (nil: time.Now): the publish time
	// carried with each event (publish→deliver latency) and the outage
	// times in Stats. Waiting (backoff, BLOCK) uses the standard library's
	// timers.
	Now func() time.Time
}

func (o StreamsOptions) withDefaults() StreamsOptions {
	if o.Prefix == "" {
		o.Prefix = "bb:"
	}
	if o.MaxLen <= 0 {
		o.MaxLen = 100_000
	}
	if o.ReadCount <= 0 {
		o.ReadCount = 256
	}
	if o.Block <= 0 {
		o.Block = 500 * time.Millisecond
	}
	if o.Consumer == "" {
		o.Consumer = defaultConsumer()
	}
	if o.ClaimInterval <= 0 {
		o.ClaimInterval = 5 * time.Second
	}
	if o.ClaimMinIdle <= 0 {
		o.ClaimMinIdle = 30 * time.Second
	}
	if o.DiscoverInterval <= 0 {
		o.DiscoverInterval = time.Second
	}
	if o.ClockSkew <= 0 {
		o.ClockSkew = 5 * time.Second
	}
	if o.ReconnectMin <= 0 {
		o.ReconnectMin = 50 * time.Millisecond
	}
	if o.ReconnectMax <= 0 {
		o.ReconnectMax = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

func defaultConsumer() string {
	h, _ := os.Hostname()
	if h == "" {
		h = "localhost"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", h, os.Getpid(), hex.EncodeToString(b[:]))
}

// Streams is the Redis Streams transport: durable, at-least-once delivery
// through consumer groups. See the package documentation.
type Streams struct {
	client redis.UniversalClient
	opts   StreamsOptions
	health *health
	batch  *batcher
	known  sync.Map // topic → struct{}: already in the topic set
	keys   sync.Map // topic → stream key, so that hot paths build it once

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	acks   chan ackReq
	seq    atomic.Uint64

	received    atomic.Uint64
	redelivered atomic.Uint64
	reclaimed   atomic.Uint64
	acked       atomic.Uint64
	trimmed     atomic.Uint64
}

var _ eventbus.Transport = (*Streams)(nil)

// NewStreams returns a Redis Streams transport on client. It returns
// ErrNilClient without a client, and an *eventbus.OptionError (errors.Is
// eventbus.ErrInvalidOptions) naming the first field it refuses: a negative
// size or duration, or ReconnectMax below ReconnectMin. Once the options
// are valid it starts its publish flushers and acknowledger, which Close
// stops. Closing the transport (or the Bus using it) does not close client.
func NewStreams(client redis.UniversalClient, opts StreamsOptions) (*Streams, error) {
	if err := checkClient(client); err != nil {
		return nil, err
	}
	if err := opts.validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	t := &Streams{client: client, opts: opts, health: newHealth(opts.Now), acks: make(chan ackReq, 8192)}
	t.health.onError, t.health.logger, t.health.name = opts.OnError, opts.Logger, "redis-streams"
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.batch = newBatcher(client, opts.Batch, t.health, reconnectPolicy(opts.ReconnectMin, opts.ReconnectMax), opts.Now, func(ctx context.Context, pipe redis.Pipeliner, ev *eventbus.Event, data []byte) {
		pipe.XAdd(ctx, &redis.XAddArgs{
			Stream: t.streamKey(ev.Topic), MaxLen: t.opts.MaxLen, Approx: true,
			Values: []any{"e", data},
		})
	})
	t.wg.Add(1)
	go t.acker()
	return t, nil
}

// Consumer returns this instance's consumer name.
func (t *Streams) Consumer() string { return t.opts.Consumer }

func (t *Streams) streamKey(topic string) string {
	if k, ok := t.keys.Load(topic); ok {
		return k.(string)
	}
	k := t.opts.Prefix + "s:" + topic
	t.keys.Store(topic, k)
	return k
}
func (t *Streams) topicOf(key string) string { return strings.TrimPrefix(key, t.opts.Prefix+"s:") }
func (t *Streams) registryKey() string       { return t.opts.Prefix + "topics" }

// StreamsFeatures returns the guarantees of the Streams transport. Each call
// returns a fresh value: changing it changes nothing else.
func StreamsFeatures() eventbus.Features {
	return eventbus.Features{
		Name: "redis-streams", History: true, Redelivery: true, Durable: true,
		SharedSubscriptions: true, CrossInstance: true,
	}
}

// Features implements eventbus.Transport.
func (t *Streams) Features() eventbus.Features { return StreamsFeatures() }

// Stats implements eventbus.Transport.
func (t *Streams) Stats() eventbus.TransportStats {
	st := eventbus.TransportStats{
		Name:           "redis-streams",
		Published:      t.batch.published.Load(),
		PublishBatches: t.batch.batches.Load(),
		Received:       t.received.Load(),
		Redelivered:    t.redelivered.Load(),
		Reclaimed:      t.reclaimed.Load(),
		Acked:          t.acked.Load(),
		Trimmed:        t.trimmed.Load(),
	}
	t.health.fill(&st)
	return st
}

// Publish implements eventbus.Transport: one pipelined XADD MAXLEN ~ per
// event, batched with concurrent publishes. It returns nil once Redis has
// acknowledged every XADD.
func (t *Streams) Publish(ctx context.Context, evs []eventbus.Event) error {
	if err := t.register(ctx, evs); err != nil {
		return err
	}
	return t.batch.publish(ctx, evs)
}

// register adds topics this process has not published before to the topic
// set that pattern subscriptions discover topics from.
func (t *Streams) register(ctx context.Context, evs []eventbus.Event) error {
	var fresh []any
	for i := range evs {
		if _, ok := t.known.Load(evs[i].Topic); !ok {
			fresh = append(fresh, evs[i].Topic)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	var start time.Time
	var refused error
	for n := 1; ; n++ {
		err := t.client.SAdd(ctx, t.registryKey(), fresh...).Err()
		if err == nil {
			break
		}
		t.health.fail(err)
		if !tryAgain(err) {
			return withRefusal(err, refused)
		}
		refused = err
		if n == 1 {
			start = time.Now()
		}
		if !retryWait(ctx, reconnectPolicy(t.opts.ReconnectMin, t.opts.ReconnectMax), n, start, t.batch.opts.Timeout) {
			return err
		}
	}
	t.health.ok()
	for _, tp := range fresh {
		t.known.Store(tp, struct{}{})
	}
	return nil
}

// History implements eventbus.Transport with XRANGE.
func (t *Streams) History(ctx context.Context, topic string, from eventbus.Position, limit int) ([]eventbus.Event, error) {
	key := t.streamKey(topic)
	start := "-"
	filter := false
	switch {
	case from.IsStart() || from.IsZero():
	default:
		if id, ok := from.AfterIDValue(); ok {
			sid, exact, err := t.resolveAfterID(ctx, key, id)
			if err != nil {
				return nil, err
			}
			if sid == "$" {
				return nil, nil
			}
			start, filter = "("+sid, !exact
			if sid == "0" {
				start = "-"
			}
		} else if tm, ok := from.TimeValue(); ok {
			start, filter = strconv.FormatInt(max(0, tm.Add(-t.opts.ClockSkew).UnixMilli()), 10)+"-0", true
		}
	}
	var out []eventbus.Event
	const page = 1000
	for {
		msgs, err := t.client.XRangeN(ctx, key, start, "+", page).Result()
		if err != nil {
			t.health.fail(err)
			return nil, err
		}
		t.health.ok()
		for _, m := range msgs {
			data, ok := payloadField(m.Values)
			if !ok {
				continue
			}
			ev, _, err := decode(data)
			if err != nil {
				continue
			}
			ev.Topic = topic
			if filter && !from.Includes(&ev) {
				continue
			}
			out = append(out, ev)
			if limit > 0 && len(out) >= limit {
				return out, nil
			}
		}
		if len(msgs) < page {
			return out, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// resolveAfterID finds the stream entry of the event with the given ID. It
// returns that entry's stream ID with exact=true; or, when the event is no
// longer retained, the stream ID just before the first entry whose event ID
// sorts after id; or "$" when no retained entry sorts after it.
func (t *Streams) resolveAfterID(ctx context.Context, key string, id eventbus.ID) (sid string, exact bool, err error) {
	ms := id.Time().UnixMilli()
	start := strconv.FormatInt(max(0, ms-t.opts.ClockSkew.Milliseconds()), 10) + "-0"
	limit := ms + t.opts.ClockSkew.Milliseconds()
	firstAfter := ""
	const page = 500
	for {
		msgs, err := t.client.XRangeN(ctx, key, start, "+", page).Result()
		if err != nil {
			t.health.fail(err)
			return "", false, err
		}
		for _, m := range msgs {
			if data, ok := payloadField(m.Values); ok {
				if ev, _, err := decode(data); err == nil {
					if ev.ID == id {
						return m.ID, true, nil
					}
					if firstAfter == "" && ev.ID.Compare(id) > 0 {
						firstAfter = prevStreamID(m.ID)
					}
				}
			}
			if entryMs(m.ID) > limit {
				if firstAfter != "" {
					return firstAfter, false, nil
				}
				return prevStreamID(m.ID), false, nil
			}
		}
		if len(msgs) < page {
			break
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
	if firstAfter != "" {
		return firstAfter, false, nil
	}
	return "$", false, nil // nothing retained sorts after id
}

func entryMs(sid string) int64 {
	i := strings.IndexByte(sid, '-')
	if i < 0 {
		i = len(sid)
	}
	ms, _ := strconv.ParseInt(sid[:i], 10, 64)
	return ms
}

// prevStreamID returns the largest stream ID below sid.
func prevStreamID(sid string) string {
	i := strings.IndexByte(sid, '-')
	if i < 0 {
		return sid
	}
	ms, _ := strconv.ParseUint(sid[:i], 10, 64)
	seq, _ := strconv.ParseUint(sid[i+1:], 10, 64)
	switch {
	case seq > 0:
		return fmt.Sprintf("%d-%d", ms, seq-1)
	case ms > 0:
		return fmt.Sprintf("%d-%d", ms-1, uint64(1<<64-1))
	}
	return "0"
}

// startID is the consumer-group start (last delivered ID) for a position.
func (t *Streams) startID(ctx context.Context, key string, from eventbus.Position) (string, error) {
	switch {
	case from.IsZero():
		return "$", nil
	case from.IsStart():
		return "0", nil
	}
	if id, ok := from.AfterIDValue(); ok {
		sid, _, err := t.resolveAfterID(ctx, key, id)
		return sid, err
	}
	tm, _ := from.TimeValue()
	return prevStreamID(strconv.FormatInt(max(0, tm.UnixMilli()), 10) + "-0"), nil
}

// Subscribe implements eventbus.Transport with one consumer group per
// subscription: req.Name when given (shared by every instance that uses the
// name), otherwise a private group that is destroyed on Close.
func (t *Streams) Subscribe(ctx context.Context, req eventbus.SubscribeRequest, sink eventbus.Sink) (eventbus.TransportSubscription, error) {
	pat, err := eventbus.ParsePattern(req.Pattern)
	if err != nil {
		return nil, err
	}
	s := &streamSub{t: t, req: req, pat: pat, sink: sink, private: req.Name == "", inflight: make(map[ackKey]struct{})}
	s.group = req.Name
	if s.private {
		s.group = fmt.Sprintf("bb.private.%s.%d", t.opts.Consumer, t.seq.Add(1))
	}
	s.ctx, s.cancel = context.WithCancel(t.ctx)
	var topics []string
	if pat.IsLiteral() {
		topics = []string{req.Pattern}
	} else {
		all, err := t.client.SMembers(ctx, t.registryKey()).Result()
		if err != nil {
			t.health.fail(err)
			s.cancel()
			return nil, err
		}
		for _, tp := range all {
			if pat.Match(tp) {
				topics = append(topics, tp)
			}
		}
	}
	for _, tp := range topics {
		key := t.streamKey(tp)
		start, err := t.startID(ctx, key, req.From)
		if err == nil {
			err = s.ensureGroup(ctx, key, start)
		}
		if err != nil {
			s.cancel()
			s.destroyGroups()
			return nil, err
		}
		s.keys = append(s.keys, key)
	}
	s.wg.Add(1)
	go s.reader()
	if !s.private {
		s.wg.Add(1)
		go s.claimer()
	}
	if !pat.IsLiteral() {
		s.wg.Add(1)
		go s.discoverer()
	}
	return s, nil
}

// Close implements eventbus.Transport. It stops every subscription's
// receiver, flushes acknowledgements and pending publishes, and leaves the
// client open.
func (t *Streams) Close() error {
	t.batch.close()
	t.cancel()
	t.wg.Wait()
	return nil
}

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
		res, err := t.client.XReadGroup(s.ctx, &redis.XReadGroupArgs{
			Group: s.group, Consumer: t.opts.Consumer, Streams: args,
			Count: t.opts.ReadCount, Block: block,
		}).Result()
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

// discoverer adds the topics a pattern subscription matches as they appear.
func (s *streamSub) discoverer() {
	defer s.wg.Done()
	t := s.t
	tick := time.NewTicker(t.opts.DiscoverInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		all, err := t.client.SMembers(s.ctx, t.registryKey()).Result()
		if err != nil {
			if s.ctx.Err() == nil {
				t.health.fail(err)
			}
			continue
		}
		have := map[string]bool{}
		for _, k := range s.keysSnapshot() {
			have[k] = true
		}
		for _, tp := range all {
			key := t.streamKey(tp)
			if have[key] || !s.pat.Match(tp) {
				continue
			}
			// A topic that appears after the subscription started holds
			// only events published since: start at its beginning.
			if err := s.ensureGroup(s.ctx, key, "0"); err != nil {
				continue
			}
			s.mu.Lock()
			s.keys = append(s.keys, key)
			s.mu.Unlock()
		}
	}
}
