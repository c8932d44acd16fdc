package redisbus_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/bodybroker/sdk/eventbus/redisbus"
)

// TestSlotMatchesCluster checks the transport's CRC16 slot function against
// the cluster's own CLUSTER KEYSLOT, hash tags included.
func TestSlotMatchesCluster(t *testing.T) {
	c, _ := clusterClient(t)
	keys := []string{
		"", "a", "123456789", "bb:s:world.time.phase", "{user1000}.following",
		"foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", "{}", "{bb}:s:x", "x{", "x}y{",
	}
	for i := range 50 {
		keys = append(keys, fmt.Sprintf("bbtest:eventbus:%d:s:topic.%d", i, i))
	}
	for _, k := range keys {
		want, err := c.ClusterKeySlot(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := redisbus.Slot(k); int64(got) != want {
			t.Errorf("Slot(%q) = %d, want %d (CLUSTER KEYSLOT)", k, got, want)
		}
	}
}
