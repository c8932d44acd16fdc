package audio_test

import (
	"testing"

	"github.com/bodybroker/sdk/audio"
	"github.com/bodybroker/sdk/audio/audiotest"
)

func TestMemoryClipStoreConformance(t *testing.T) {
	audiotest.TestClipStore(t, func(t *testing.T) audio.ClipStore {
		s, err := audio.NewMemoryClipStore(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
