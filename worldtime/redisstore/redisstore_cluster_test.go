package redisstore_test

import (
	"testing"

	"github.com/bodybroker/sdk/internal/servicetest"
	"github.com/bodybroker/sdk/worldtime"
	"github.com/bodybroker/sdk/worldtime/redisstore"
	"github.com/bodybroker/sdk/worldtime/worldtimetest"
)

// TestStoreCluster runs the store suite on a 3-master Redis Cluster
// (BB_REDIS_CLUSTER_ADDRS; `bash .ci/redis-cluster start`): each world's
// key carries its own hash tag, so no script fails with CROSSSLOT.
func TestStoreCluster(t *testing.T) {
	c := servicetest.RedisCluster(t)
	worldtimetest.TestStore(t, func(t *testing.T) worldtime.Store {
		s, err := redisstore.New(c, redisstore.Options{Prefix: servicetest.KeyPrefix(t, c, "worldtime")})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
