package redisbus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/eventbus/redisbus"
	"github.com/redis/go-redis/v9"
)

func TestConstructorsRefuseNilClient(t *testing.T) {
	var typedNil *redis.Client
	for _, c := range []redis.UniversalClient{nil, typedNil} {
		if tr, err := redisbus.NewStreams(c, redisbus.StreamsOptions{}); !errors.Is(err, redisbus.ErrNilClient) || tr != nil {
			t.Errorf("NewStreams(%#v) = %v, %v; want ErrNilClient", c, tr, err)
		}
		if tr, err := redisbus.NewPubSub(c, redisbus.PubSubOptions{}); !errors.Is(err, redisbus.ErrNilClient) || tr != nil {
			t.Errorf("NewPubSub(%#v) = %v, %v; want ErrNilClient", c, tr, err)
		}
	}
}

// Refused options start nothing: goleak in TestMain sees no flusher or
// acknowledger left behind.
func TestConstructorsRefuseBadOptions(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer c.Close()
	streams := []struct {
		opts  redisbus.StreamsOptions
		field string
	}{
		{redisbus.StreamsOptions{MaxLen: -1}, "StreamsOptions.MaxLen"},
		{redisbus.StreamsOptions{ReadCount: -1}, "StreamsOptions.ReadCount"},
		{redisbus.StreamsOptions{Block: -time.Second}, "StreamsOptions.Block"},
		{redisbus.StreamsOptions{ClaimInterval: -1}, "StreamsOptions.ClaimInterval"},
		{redisbus.StreamsOptions{ClaimMinIdle: -1}, "StreamsOptions.ClaimMinIdle"},
		{redisbus.StreamsOptions{DiscoverInterval: -1}, "StreamsOptions.DiscoverInterval"},
		{redisbus.StreamsOptions{ClockSkew: -1}, "StreamsOptions.ClockSkew"},
		{redisbus.StreamsOptions{ReconnectMin: -1}, "StreamsOptions.ReconnectMin"},
		{redisbus.StreamsOptions{ReconnectMin: time.Second, ReconnectMax: time.Millisecond}, "StreamsOptions.ReconnectMax"},
		{redisbus.StreamsOptions{Batch: redisbus.BatchOptions{Flushers: -1}}, "StreamsOptions.Batch.Flushers"},
		{redisbus.StreamsOptions{Batch: redisbus.BatchOptions{MaxBatch: -1}}, "StreamsOptions.Batch.MaxBatch"},
		{redisbus.StreamsOptions{Batch: redisbus.BatchOptions{Linger: -1}}, "StreamsOptions.Batch.Linger"},
		{redisbus.StreamsOptions{Batch: redisbus.BatchOptions{Timeout: -1}}, "StreamsOptions.Batch.Timeout"},
	}
	for _, tc := range streams {
		tr, err := redisbus.NewStreams(c, tc.opts)
		checkOptionError(t, "NewStreams", tr == nil, err, tc.field)
	}
	pubsub := []struct {
		opts  redisbus.PubSubOptions
		field string
	}{
		{redisbus.PubSubOptions{ReconnectMax: -1}, "PubSubOptions.ReconnectMax"},
		{redisbus.PubSubOptions{Batch: redisbus.BatchOptions{Flushers: -3}}, "PubSubOptions.Batch.Flushers"},
	}
	for _, tc := range pubsub {
		tr, err := redisbus.NewPubSub(c, tc.opts)
		checkOptionError(t, "NewPubSub", tr == nil, err, tc.field)
	}
}

func checkOptionError(t *testing.T, ctor string, isNil bool, err error, field string) {
	t.Helper()
	var oe *eventbus.OptionError
	switch {
	case !isNil:
		t.Errorf("%s: returned a transport with error %v", ctor, err)
	case !errors.Is(err, eventbus.ErrInvalidOptions) || !errors.As(err, &oe):
		t.Errorf("%s: err = %v, want an *eventbus.OptionError", ctor, err)
	case oe.Field != field:
		t.Errorf("%s: field %q, want %q", ctor, oe.Field, field)
	}
}

// A valid constructor starts its background work and Close stops it
// (goleak in TestMain checks), without touching Redis.
func TestConstructorsCloseStopsGoroutines(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer c.Close()
	s, err := redisbus.NewStreams(c, redisbus.StreamsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := redisbus.NewPubSub(c, redisbus.PubSubOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// Stats read the transport's clock: an outage began at Options.Now.
func TestStatsUseNow(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	now := func() time.Time { return at }
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1}) // refuses connections
	defer c.Close()
	s, err := redisbus.NewStreams(c, redisbus.StreamsOptions{Now: now, OnError: func(error) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // bounds a hang only
	defer cancel()
	if err := s.Publish(ctx, []eventbus.Event{{Topic: "a"}}); err == nil {
		t.Fatal("Publish to a closed port succeeded")
	}
	st := s.Stats()
	if !st.LastErrorAt.Equal(at) || !st.DownSince.Equal(at) {
		t.Errorf("LastErrorAt %v, DownSince %v; want both %v", st.LastErrorAt, st.DownSince, at)
	}
}

// Features are values: what a caller does with one changes nothing else.
func TestFeaturesCannotBeChanged(t *testing.T) {
	s := redisbus.StreamsFeatures()
	s.Redelivery, s.Name = false, "changed"
	if g := redisbus.StreamsFeatures(); !g.Redelivery || g.Name != "redis-streams" {
		t.Fatalf("StreamsFeatures() = %+v after a caller changed its copy", g)
	}
	p := redisbus.PubSubFeatures()
	p.History = true
	if g := redisbus.PubSubFeatures(); g.History || g.Name != "redis-pubsub" {
		t.Fatalf("PubSubFeatures() = %+v after a caller changed its copy", g)
	}
}
