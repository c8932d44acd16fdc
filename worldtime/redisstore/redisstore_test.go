package redisstore_test

import (
	"testing"

	"github.com/bodybroker/sdk/internal/servicetest"
	"github.com/bodybroker/sdk/worldtime"
	"github.com/bodybroker/sdk/worldtime/redisstore"
	"github.com/bodybroker/sdk/worldtime/worldtimetest"
)

func newStore(t *testing.T) *redisstore.Store {
	c := servicetest.Redis(t)
	s, err := redisstore.New(c, redisstore.Options{Prefix: servicetest.KeyPrefix(t, c, "worldtime")})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStore(t *testing.T) {
	worldtimetest.TestStore(t, func(t *testing.T) worldtime.Store { return newStore(t) })
}
