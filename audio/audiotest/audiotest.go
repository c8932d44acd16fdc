// Package audiotest is the conformance suite for [audio.ClipStore]
// implementations: run TestClipStore against every backend (the memory
// store, audio/redisclips, your own).
package audiotest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bodybroker/sdk/audio"
)

// TestClipStore runs the suite; newStore returns an empty store (or one
// private to the test) that holds at least 1 MiB.
func TestClipStore(t *testing.T, newStore func(t *testing.T) audio.ClipStore) {
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, newStore(t)) })
	t.Run("ContentAddressed", func(t *testing.T) { testContentAddressed(t, newStore(t)) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, newStore(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newStore(t)) })
}

func wav(seed int16, n int) []byte {
	s := make([]int16, n)
	for i := range s {
		s[i] = seed + int16(i%100)
	}
	return audio.EncodeWAV(22050, 1, s)
}

func testRoundTrip(t *testing.T, s audio.ClipStore) {
	ctx := context.Background()
	data := wav(1, 5000)
	in := audio.Clip{ContentType: "audio/wav", Data: bytes.Clone(data), Duration: 226757369 * time.Nanosecond}
	put, err := s.Put(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if put.ID != audio.ClipID("audio/wav", data) {
		t.Errorf("Put ID = %q, want ClipID %q", put.ID, audio.ClipID("audio/wav", data))
	}
	got, err := s.Get(ctx, put.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != put.ID || got.ContentType != in.ContentType || got.Duration != in.Duration || !bytes.Equal(got.Data, data) {
		t.Errorf("Get = %q %q %v %d bytes; want %q %q %v %d bytes", got.ID, got.ContentType, got.Duration, len(got.Data), put.ID, in.ContentType, in.Duration, len(data))
	}
}

func testContentAddressed(t *testing.T, s audio.ClipStore) {
	ctx := context.Background()
	a, err := s.Put(ctx, audio.Clip{ContentType: "audio/wav", Data: wav(2, 100), Duration: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Put(ctx, audio.Clip{ContentType: "audio/wav", Data: wav(2, 100), Duration: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Put(ctx, audio.Clip{ContentType: "audio/wav", Data: wav(3, 100), Duration: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || a.ID == c.ID {
		t.Errorf("IDs %q %q %q: equal content must share an ID, different content must not", a.ID, b.ID, c.ID)
	}
}

func testNotFound(t *testing.T, s audio.ClipStore) {
	if _, err := s.Get(context.Background(), "00000000000000000000000000000000.wav"); !errors.Is(err, audio.ErrClipNotFound) {
		t.Errorf("Get(unknown) = %v, want ErrClipNotFound", err)
	}
}

func testConcurrent(t *testing.T, s audio.ClipStore) {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Go(func() {
			for i := range 8 {
				data := wav(int16(10+i), 200) // each clip put by every goroutine
				c, err := s.Put(ctx, audio.Clip{ContentType: "audio/wav", Data: data, Duration: time.Millisecond})
				if err != nil {
					errs <- err
					return
				}
				got, err := s.Get(ctx, c.ID)
				if err != nil || !bytes.Equal(got.Data, data) {
					errs <- fmt.Errorf("goroutine %d clip %d: %v", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
