package redisbus

import (
	"testing"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/google/go-cmp/cmp"
)

func TestCodecRoundTrip(t *testing.T) {
	tests := []eventbus.Event{
		{},
		{ID: eventbus.NewID(), Topic: "world.time.dawn", Type: "t", Source: "s", Time: time.Unix(0, 123456789), Key: "k",
			Headers: map[string]string{"a": "1", "": ""}, Payload: []byte("payload")},
		{ID: eventbus.NewID(), Topic: "x", Payload: make([]byte, 70000)},
	}
	pub := time.Unix(1700000000, 42)
	for _, want := range tests {
		got, gotPub, err := decode(encode(&want, pub))
		if err != nil {
			t.Fatal(err)
		}
		if want.Payload == nil {
			want.Payload = []byte{}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
		if !gotPub.Equal(pub) {
			t.Errorf("published %v, want %v", gotPub, pub)
		}
	}
}

func FuzzDecode(f *testing.F) {
	ev := eventbus.Event{ID: eventbus.NewID(), Topic: "a.b", Type: "T", Key: "k", Headers: map[string]string{"h": "v"}, Payload: []byte("{}")}
	f.Add(encode(&ev, time.Now()))
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, pub, err := decode(data)
		if err != nil {
			return
		}
		// What decodes re-encodes to something that decodes the same.
		ev2, pub2, err := decode(encode(&ev, pub))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if diff := cmp.Diff(ev, ev2); diff != "" || !pub.Equal(pub2) {
			t.Fatalf("unstable (-first +second):\n%s", diff)
		}
	})
}
