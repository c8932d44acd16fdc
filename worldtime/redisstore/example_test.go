package redisstore_test

import (
	"context"
	"fmt"
	"time"

	"github.com/bodybroker/sdk/worldtime"
	"github.com/bodybroker/sdk/worldtime/redisstore"
	"github.com/redis/go-redis/v9"
)

// Two game servers share one clock on Redis. Each process runs this with
// its own client; here both clocks live in one process for brevity. The
// example needs a Redis server, so it is compiled but not run.
func Example() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close() // the store never closes it
	store, _ := redisstore.New(rdb, redisstore.Options{})

	serverA, _ := worldtime.New(ctx, worldtime.Options{World: "day-world", Store: store})
	defer serverA.Close()
	serverB, _ := worldtime.New(ctx, worldtime.Options{World: "day-world", Store: store})
	defer serverB.Close()

	// Schedule the change past one refresh interval so both switch at the
	// same real instant.
	_, _ = serverA.Apply(ctx, worldtime.Change{Kind: worldtime.ChangePause, At: time.Now().Add(2 * time.Second)})
	time.Sleep(3 * time.Second)
	fmt.Println(serverA.Now() == serverB.Now())
}
