package worldtime_test

import (
	"testing"

	"github.com/bodybroker/sdk/worldtime"
	"github.com/bodybroker/sdk/worldtime/worldtimetest"
)

func TestMemoryStore(t *testing.T) {
	worldtimetest.TestStore(t, func(*testing.T) worldtime.Store { return &worldtime.MemoryStore{} })
}
