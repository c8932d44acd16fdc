package redisbus

import (
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

type intField struct {
	name string
	v    int64
}

type durField struct {
	name string
	v    time.Duration
}

// checkFields returns an *eventbus.OptionError for the first negative field.
func checkFields(ints []intField, durs []durField) error {
	for _, f := range ints {
		if f.v < 0 {
			return &eventbus.OptionError{Field: f.name, Value: f.v, Reason: "must not be negative (0 means the default)"}
		}
	}
	for _, f := range durs {
		if f.v < 0 {
			return &eventbus.OptionError{Field: f.name, Value: f.v, Reason: "must not be negative (0 means the default)"}
		}
	}
	return nil
}

func checkReconnect(owner string, lo, hi time.Duration) error {
	if err := checkFields(nil, []durField{{owner + ".ReconnectMin", lo}, {owner + ".ReconnectMax", hi}}); err != nil {
		return err
	}
	if lo > 0 && hi > 0 && hi < lo {
		return &eventbus.OptionError{Field: owner + ".ReconnectMax", Value: hi, Reason: "below ReconnectMin " + lo.String()}
	}
	return nil
}

func (o BatchOptions) validate(owner string) error {
	p := owner + ".Batch."
	return checkFields(
		[]intField{{p + "MaxBatch", int64(o.MaxBatch)}, {p + "Flushers", int64(o.Flushers)}},
		[]durField{{p + "Linger", o.Linger}, {p + "Timeout", o.Timeout}},
	)
}

func (o StreamsOptions) validate() error {
	const s = "StreamsOptions"
	if err := checkFields(
		[]intField{{s + ".MaxLen", o.MaxLen}, {s + ".ReadCount", o.ReadCount}},
		[]durField{
			{s + ".Block", o.Block}, {s + ".ClaimInterval", o.ClaimInterval}, {s + ".ClaimMinIdle", o.ClaimMinIdle},
			{s + ".DiscoverInterval", o.DiscoverInterval}, {s + ".ClockSkew", o.ClockSkew},
		},
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
