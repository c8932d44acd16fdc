package redisstore_test

import (
	"testing"

	"github.com/bodybroker/sdk/dialogue/dialoguetest"
	"github.com/bodybroker/sdk/dialogue/history"
	"github.com/bodybroker/sdk/dialogue/redisstore"
	"github.com/bodybroker/sdk/internal/servicetest"
)

// TestStoreConformanceCluster runs the store suite on a 3-master Redis
// Cluster (BB_REDIS_CLUSTER_ADDRS; `bash .ci/redis-cluster start`). Every
// script's keys share the player's hash tag, so none fails with CROSSSLOT.
func TestStoreConformanceCluster(t *testing.T) {
	c := servicetest.RedisCluster(t)
	cfg := storeConfig()
	dialoguetest.TestStore(t, cfg, func(t *testing.T) history.Store {
		s, err := redisstore.New(c, redisstore.Options{Prefix: servicetest.KeyPrefix(t, c, "dialogue"), MaxTurns: cfg.MaxTurns, TTL: cfg.TTL,
			MaxConversationBytes: cfg.MaxConversationBytes, MaxSessionsPerPlayer: cfg.MaxSessionsPerPlayer})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
