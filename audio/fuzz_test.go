package audio

import (
	"encoding/json"
	"math"
	"testing"
)

// FuzzCueApply decodes a client's cue as JSON, applies it to a snapshot and
// evaluates the mix: bad input may be rejected but never panics, and every
// gain stays within [0, 1].
func FuzzCueApply(f *testing.F) {
	f.Add([]byte(`{"version":1,"seq":1,"kind":"crossfade","crossfade":{"slot":"zone","bus":"ambient","to":"MS_Zone_Docks","to_gain":1,"duration":5000000000,"curve":"equal_power"}}`))
	f.Add([]byte(`{"version":1,"seq":1,"kind":"bus_gain","bus":{"name":"music","volume":0.5}}`))
	f.Add([]byte(`{"version":1,"seq":1,"kind":"duck","duck":{"rule":"dialogue","ramp":{"from":0,"to":1,"duration":200000000}}}`))
	f.Add([]byte(`{"version":1,"seq":1,"kind":"play","voice":{"id":"a","bus":"voice","volume":1}}`))
	f.Add([]byte(`{"version":1,"seq":1,"kind":"stop","voice":{"id":"a"}}`))
	d, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	base, _ := json.Marshal(d.Snapshot())
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Cue
		if json.Unmarshal(b, &c) != nil {
			return
		}
		var s Snapshot
		if err := json.Unmarshal(base, &s); err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(c); err != nil {
			return
		}
		mix, err := s.Mix(t0)
		if err != nil {
			return // a cue with a bad volume is rejected by the mixer
		}
		for bus, g := range mix.Buses {
			if !(g >= 0 && g <= 1) {
				t.Fatalf("bus %s gain %v", bus, g)
			}
		}
		for _, l := range mix.Layers {
			if math.IsNaN(l.Gain) {
				t.Fatalf("layer %+v", l)
			}
		}
	})
}

// FuzzPlayerVolumesFromSettings: any settings payload gives volumes in
// [0, 1] or an error.
func FuzzPlayerVolumesFromSettings(f *testing.F) {
	f.Add([]byte(`{"version":1,"player_id":"p","keys":[{"key":"audio.music","new":0.5},{"key":"audio.master","new":1},{"key":"video.fov","new":90}]}`))
	f.Add([]byte(`{"keys":[{"key":"audio.","new":2},{"key":"audio.x","new":"y"},{"key":"audio.y","new":-1}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ev SettingsChanged
		if json.Unmarshal(b, &ev) != nil {
			return
		}
		pv, err := PlayerVolumesFromSettings(ev.Values())
		if err != nil {
			return
		}
		for k, v := range pv {
			if !(v >= 0 && v <= 1) || k == "" {
				t.Fatalf("%q = %v", k, v)
			}
		}
	})
}
