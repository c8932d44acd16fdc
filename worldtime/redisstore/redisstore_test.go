package redisstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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

// Two processes share one clock through a real Redis: a child process
// (this test binary, re-run) loads the world the parent created and
// changed, and evaluates the same real instants to the same game times.
func TestMultiProcessAgreement(t *testing.T) {
	if os.Getenv("BB_WORLDTIME_CHILD") == "1" {
		child(t)
		return
	}
	ctx := context.Background()
	c := servicetest.Redis(t)
	prefix := servicetest.KeyPrefix(t, c, "worldtime")
	s, err := redisstore.New(c, redisstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	clock, err := worldtime.New(ctx, worldtime.Options{World: "fleet", Store: s, DisableRefresh: true})
	if err != nil {
		t.Fatal(err)
	}
	defer clock.Close()
	now := time.Now()
	if err := clock.Skip(ctx, 3*time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := clock.Apply(ctx, worldtime.Change{Kind: worldtime.ChangeScale, Scale: worldtime.Scale{Game: 7 * time.Hour, Real: 11 * time.Second}, At: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := clock.Apply(ctx, worldtime.Change{Kind: worldtime.ChangePause, At: now.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var instants []int64
	var want []string
	for _, d := range []time.Duration{0, time.Second, time.Hour - 1, time.Hour, 90 * time.Minute, 2 * time.Hour, 5 * time.Hour} {
		instants = append(instants, now.Add(d).UnixNano())
		want = append(want, fmt.Sprint(int64(clock.At(now.Add(d)).Instant)))
	}
	args, _ := json.Marshal(instants)
	cmd := exec.Command(os.Args[0], "-test.run=^TestMultiProcessAgreement$", "-test.v")
	cmd.Env = append(os.Environ(), "BB_WORLDTIME_CHILD=1", "BB_WORLDTIME_PREFIX="+prefix,
		"BB_WORLDTIME_INSTANTS="+string(args), servicetest.EnvRedisAddr+"="+servicetest.RedisAddr())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var got []string
	for line := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "GAME "); ok {
			got = append(got, v)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("game times, parent vs child process (-parent +child):\n%s\nchild output:\n%s", diff, out)
	}
}

func child(t *testing.T) {
	ctx := context.Background()
	c := servicetest.Redis(t)
	s, err := redisstore.New(c, redisstore.Options{Prefix: os.Getenv("BB_WORLDTIME_PREFIX")})
	if err != nil {
		t.Fatal(err)
	}
	clock, err := worldtime.New(ctx, worldtime.Options{World: "fleet", Store: s, DisableRefresh: true})
	if err != nil {
		t.Fatal(err)
	}
	defer clock.Close()
	if v := clock.Timeline().Version; v != 4 {
		t.Fatalf("child loaded version %d, want 4", v)
	}
	var instants []int64
	if err := json.Unmarshal([]byte(os.Getenv("BB_WORLDTIME_INSTANTS")), &instants); err != nil {
		t.Fatal(err)
	}
	for _, r := range instants {
		fmt.Printf("GAME %d\n", clock.At(time.Unix(0, r)).Instant)
	}
}

// A change on one server reaches another through Redis pub/sub, long
// before its next poll (Refresh is an hour here).
func TestWatchPropagatesChanges(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	a, err := worldtime.New(ctx, worldtime.Options{World: "watched", Store: s, Refresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := worldtime.New(ctx, worldtime.Options{World: "watched", Store: s, Refresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// Wait for b's subscription: its first notification triggers a load.
	deadline := time.Now().Add(30 * time.Second) // bounds a hang only
	for b.Stats().StoreLoads < 2 {
		if time.Now().After(deadline) {
			t.Fatal("b never subscribed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := a.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	want := a.Timeline().Version
	for b.Timeline().Version != want {
		if time.Now().After(deadline) {
			t.Fatalf("b still at version %d, want %d", b.Timeline().Version, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !b.Now().Paused || b.Now().Instant != a.Now().Instant {
		t.Fatalf("b: %v paused=%v; a: %v", b.Now(), b.Now().Paused, a.Now())
	}
}
