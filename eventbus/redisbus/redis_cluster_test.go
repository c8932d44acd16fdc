package redisbus_test

import (
	"testing"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/eventbus/eventbustest"
	"github.com/bodybroker/sdk/eventbus/redisbus"
	"github.com/bodybroker/sdk/internal/servicetest"
	"github.com/redis/go-redis/v9"
)

// clusterClient returns a client on the 3-master Redis Cluster
// (BB_REDIS_CLUSTER_ADDRS; `bash .ci/redis-cluster start`) and a key prefix
// unique to the test, without a hash tag: each topic's stream hashes to its
// own slot.
func clusterClient(t testing.TB) (*redis.ClusterClient, string) {
	c := servicetest.RedisCluster(t)
	return c, servicetest.KeyPrefix(t, c, "eventbus")
}

func clusterHarness(features eventbus.Features, transport func(t testing.TB, c redis.UniversalClient, prefix string) eventbus.Transport) eventbustest.Harness {
	return eventbustest.Harness{
		Features: features,
		Backend: func(t *testing.T) eventbustest.Opener {
			c, prefix := clusterClient(t)
			return func(opts eventbus.Options) *eventbus.Bus {
				opts.Transport = transport(t, c, prefix)
				b, err := eventbus.New(opts)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = b.Close() })
				return b
			}
		},
	}
}

func TestStreamsConformanceCluster(t *testing.T) {
	servicetest.RedisCluster(t) // skip (or fail in CI) before building the harness
	eventbustest.Run(t, clusterHarness(redisbus.StreamsFeatures(), func(t testing.TB, c redis.UniversalClient, prefix string) eventbus.Transport {
		return mustStreams(t, c, fastStreams(prefix))
	}))
}

// TestStreamsConformanceClusterHashTag runs the suite with a hash-tagged
// prefix: every key of the bus in one slot, as the package documents.
func TestStreamsConformanceClusterHashTag(t *testing.T) {
	servicetest.RedisCluster(t)
	eventbustest.Run(t, clusterHarness(redisbus.StreamsFeatures(), func(t testing.TB, c redis.UniversalClient, prefix string) eventbus.Transport {
		return mustStreams(t, c, fastStreams(prefix+"{bus}:"))
	}))
}

func TestPubSubConformanceCluster(t *testing.T) {
	servicetest.RedisCluster(t)
	eventbustest.Run(t, clusterHarness(redisbus.PubSubFeatures(), func(t testing.TB, c redis.UniversalClient, prefix string) eventbus.Transport {
		return mustPubSub(t, c, redisbus.PubSubOptions{Prefix: prefix})
	}))
}
