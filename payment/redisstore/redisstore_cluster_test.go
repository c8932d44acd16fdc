package redisstore_test

import (
	"testing"

	"github.com/bodybroker/sdk/internal/servicetest"
	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/paymenttest"
	"github.com/bodybroker/sdk/payment/redisstore"
)

// TestConformanceCluster runs the store suite on a 3-master Redis Cluster
// (BB_REDIS_CLUSTER_ADDRS; `bash .ci/redis-cluster start`). The scripts'
// keys share a hash tag, so none fails with CROSSSLOT.
func TestConformanceCluster(t *testing.T) {
	c := servicetest.RedisCluster(t)
	paymenttest.TestStore(t, func(t *testing.T) payment.Store {
		s, err := redisstore.New(c, redisstore.Options{Prefix: servicetest.KeyPrefix(t, c, "payment")})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
