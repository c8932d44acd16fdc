package audio_test

import (
	"context"
	"testing"
	"time"

	"github.com/bodybroker/sdk/audio"
	"github.com/bodybroker/sdk/eventbus"
)

// A cue subscriber that stops taking cues makes the director's publishes
// wait, but never its readers: Snapshot, PlayerGain and the per-frame
// Update do not queue behind a publish in progress.
func TestSlowCueSubscriberDoesNotBlockReaders(t *testing.T) {
	bus, err := eventbus.New(eventbus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	stuck := make(chan struct{})
	sub, err := bus.Subscribe(context.Background(), audio.TopicCue, func(ctx context.Context, _ eventbus.Event) error {
		select {
		case <-stuck:
		case <-ctx.Done():
		}
		return nil
	}, eventbus.SubscribeOptions{QueueSize: 1, BlockUntilCanceled: true})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	defer close(stuck)
	handed := make(chan struct{}, 16)
	d, err := audio.New(audio.Options{Events: bus, PublishTimeout: time.Hour,
		OnCue: func(audio.Cue) { handed <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	// The handler holds the first cue and the queue the second: the third
	// publish waits (for up to PublishTimeout, an hour).
	go func() {
		for _, v := range []float64{0.5, 0.4, 0.3} {
			_ = d.SetBusVolume(context.Background(), "music", v)
		}
	}()
	for range 3 {
		<-handed
	}
	done := make(chan struct{})
	go func() {
		d.Snapshot()
		if _, err := d.PlayerGain("p1", "music"); err != nil {
			t.Error(err)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // bounds a hang only
		t.Fatal("Snapshot and PlayerGain waited for a cue publish in progress")
	}
}
