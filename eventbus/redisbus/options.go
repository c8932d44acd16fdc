package redisbus

import (
	"cmp"
	"errors"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/redis/go-redis/v9"
)

// ErrNilClient is returned by NewStreams and NewPubSub when given no client.
var ErrNilClient = errors.New("redisbus: nil client")

// checkClient refuses a nil client, also one hidden in a non-nil interface.
func checkClient(c redis.UniversalClient) error {
	switch c := c.(type) {
	case nil:
		return ErrNilClient
	case *redis.Client:
		if c == nil {
			return ErrNilClient
		}
	case *redis.ClusterClient:
		if c == nil {
			return ErrNilClient
		}
	case *redis.Ring:
		if c == nil {
			return ErrNilClient
		}
	}
	return nil
}

// nonNegative returns an *eventbus.OptionError for a field below zero (0
// means its default), or nil.
func nonNegative[T int | int64 | time.Duration](field string, v T) error {
	if v < 0 {
		return &eventbus.OptionError{Field: field, Value: v, Reason: "must not be negative (0 means the default)"}
	}
	return nil
}

func checkReconnect(owner string, lo, hi time.Duration) error {
	if err := cmp.Or(nonNegative(owner+".ReconnectMin", lo), nonNegative(owner+".ReconnectMax", hi)); err != nil {
		return err
	}
	if lo > 0 && hi > 0 && hi < lo {
		return &eventbus.OptionError{Field: owner + ".ReconnectMax", Value: hi, Reason: "below ReconnectMin " + lo.String()}
	}
	return nil
}

func (o BatchOptions) validate(owner string) error {
	p := owner + ".Batch."
	return cmp.Or(
		nonNegative(p+"Linger", o.Linger),
		nonNegative(p+"MaxBatch", o.MaxBatch),
		nonNegative(p+"Flushers", o.Flushers),
		nonNegative(p+"Timeout", o.Timeout),
	)
}

func (o StreamsOptions) validate() error {
	const s = "StreamsOptions"
	if err := cmp.Or(
		nonNegative(s+".MaxLen", o.MaxLen),
		nonNegative(s+".ReadCount", o.ReadCount),
		nonNegative(s+".Block", o.Block),
		nonNegative(s+".ClaimInterval", o.ClaimInterval),
		nonNegative(s+".ClaimMinIdle", o.ClaimMinIdle),
		nonNegative(s+".DiscoverInterval", o.DiscoverInterval),
		nonNegative(s+".ClockSkew", o.ClockSkew),
	); err != nil {
		return err
	}
	if err := checkReconnect(s, o.ReconnectMin, o.ReconnectMax); err != nil {
		return err
	}
	return o.Batch.validate(s)
}

func (o PubSubOptions) validate() error {
	if err := checkReconnect("PubSubOptions", o.ReconnectMin, o.ReconnectMax); err != nil {
		return err
	}
	return o.Batch.validate("PubSubOptions")
}
