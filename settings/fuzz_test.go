package settings_test

import (
	"errors"
	"testing"

	"github.com/bodybroker/sdk/settings"
	"github.com/google/go-cmp/cmp"
)

// FuzzDecodeDocument: whatever a client sends, DecodeDocument returns a
// typed error or values that are valid, and encoding them gives a
// document that decodes to the same values.
func FuzzDecodeDocument(f *testing.F) {
	f.Add([]byte(`{"version":1,"values":{"video.quality":3,"audio.ui":0.5}}`))
	f.Add([]byte(`{"version":2,"values":{"controls.bindings":{"jump":"Space","fire":"Mouse1"},"gameplay.language":"pt-br"}}`))
	f.Add([]byte(`{"version":2,"values":{"video.fov":1e400}}`))
	f.Add([]byte(`{"version":0,"values":null}`))
	s := settings.Builtin()
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := s.DecodeDocument(b, 4096)
		if err != nil {
			for _, sentinel := range []error{settings.ErrMalformed, settings.ErrTooLarge, settings.ErrUnknownKey,
				settings.ErrWrongType, settings.ErrOutOfRange, settings.ErrNotAllowed, settings.ErrBindingConflict} {
				if errors.Is(err, sentinel) {
					return
				}
			}
			if _, ok := errors.AsType[*settings.ValidationError](err); !ok {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again, err := s.Validate(v)
		if err != nil || !cmp.Equal(again, v) {
			t.Fatalf("decoded values do not validate to themselves: %v", err)
		}
		enc, err := s.EncodeDocument(v)
		if err != nil {
			t.Fatal(err)
		}
		round, err := s.DecodeDocument(enc, 1<<20)
		if err != nil || !cmp.Equal(round, v) {
			t.Fatalf("round trip: %v\n%v\nwant %v", err, round, v)
		}
	})
}
