package redisstore_test

import (
	"testing"

	"github.com/bodybroker/sdk/internal/servicetest"
	"github.com/bodybroker/sdk/settings"
	"github.com/bodybroker/sdk/settings/redisstore"
	"github.com/bodybroker/sdk/settings/settingstest"
)

// TestConformanceCluster runs the store suite on a 3-master Redis Cluster
// (BB_REDIS_CLUSTER_ADDRS; `bash .ci/redis-cluster start`): one hash per
// player, under the player's hash tag.
func TestConformanceCluster(t *testing.T) {
	c := servicetest.RedisCluster(t)
	settingstest.TestStore(t, func(t *testing.T) settings.Store {
		s, err := redisstore.New(c, redisstore.Options{Prefix: servicetest.KeyPrefix(t, c, "settings")})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
