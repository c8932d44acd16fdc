package redisclips_test

import (
	"testing"

	"github.com/bodybroker/sdk/audio"
	"github.com/bodybroker/sdk/audio/audiotest"
	"github.com/bodybroker/sdk/audio/redisclips"
	"github.com/bodybroker/sdk/internal/servicetest"
)

// TestConformanceCluster runs the clip-store suite on a 3-master Redis
// Cluster (BB_REDIS_CLUSTER_ADDRS; `bash .ci/redis-cluster start`).
func TestConformanceCluster(t *testing.T) {
	c := servicetest.RedisCluster(t)
	audiotest.TestClipStore(t, func(t *testing.T) audio.ClipStore {
		s, err := redisclips.New(c, redisclips.Options{Prefix: servicetest.KeyPrefix(t, c, "audio")})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
