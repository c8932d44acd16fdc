package audio

import (
	"errors"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDefaultMixer(t *testing.T) {
	m, err := NewMixer(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{BusMaster: 1, BusVoice: 1, BusAmbient: 0.8, BusMusic: 0.7, BusSFX: 1, BusUI: 0.9}
	for bus, w := range want {
		if g, err := m.Gain(bus); err != nil || g != w {
			t.Errorf("Gain(%s) = %v, %v; want %v", bus, g, err, w)
		}
	}
	cats := map[Category]string{CategoryVoice: "voice", CategoryAmbient: "ambient", CategoryMusic: "music", CategoryEffect: "sfx", CategoryUI: "ui"}
	for c, bus := range cats {
		if c.Bus() != bus {
			t.Errorf("%v.Bus() = %q, want %q", c, c.Bus(), bus)
		}
	}
}

func TestMixerGainIsProductAlongPath(t *testing.T) {
	m, err := NewMixer([]BusConfig{
		{Name: "master", Volume: 0.5},
		{Name: "sfx", Parent: "master", Volume: 0.5},
		{Name: "weapons", Parent: "sfx", Volume: 0.5},
		{Name: "music", Parent: "master", Volume: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := m.Gain("weapons"); g != 0.125 {
		t.Errorf("weapons = %v, want 0.125", g)
	}
	if err := m.SetVolume("master", 1); err != nil {
		t.Fatal(err)
	}
	if g, _ := m.Gain("weapons"); g != 0.25 {
		t.Errorf("after master 1: weapons = %v, want 0.25 (volume changes reach everything below)", g)
	}
	_ = m.SetMute("sfx", true)
	if g, _ := m.Gain("weapons"); g != 0 {
		t.Errorf("sfx muted: weapons = %v, want 0", g)
	}
	if g, _ := m.Gain("music"); g != 1 {
		t.Errorf("sfx muted: music = %v, want 1", g)
	}
	_ = m.SetMute("sfx", false)
	pv := PlayerVolumes{"master": 0.5, "weapons": 0.5}
	if g, _ := m.PlayerGain(pv, "weapons"); g != 0.0625 {
		t.Errorf("player gain = %v, want 0.0625", g)
	}
	if g, _ := m.PlayerGain(pv, "music"); g != 0.5 {
		t.Errorf("player music = %v, want 0.5", g)
	}
	if got, want := m.Buses(), []string{"master", "sfx", "music", "weapons"}; !cmp.Equal(got, want) {
		t.Errorf("Buses() = %v, want %v", got, want)
	}
	if p, _ := m.Parent("weapons"); p != "sfx" {
		t.Errorf("Parent(weapons) = %q", p)
	}
}

func TestMixerBadInput(t *testing.T) {
	tests := []struct {
		name  string
		buses []BusConfig
		want  error
	}{
		{"empty", []BusConfig{}, ErrBusCycle},
		{"two roots", []BusConfig{{Name: "a", Volume: 1}, {Name: "b", Volume: 1}}, ErrBusCycle},
		{"cycle", []BusConfig{{Name: "m", Volume: 1}, {Name: "a", Parent: "b", Volume: 1}, {Name: "b", Parent: "a", Volume: 1}}, ErrBusCycle},
		{"self parent", []BusConfig{{Name: "m", Volume: 1}, {Name: "a", Parent: "a", Volume: 1}}, ErrBusCycle},
		{"unknown parent", []BusConfig{{Name: "m", Volume: 1}, {Name: "a", Parent: "x", Volume: 1}}, ErrUnknownBus},
		{"duplicate", []BusConfig{{Name: "m", Volume: 1}, {Name: "m", Volume: 1}}, ErrDuplicate},
		{"volume above 1", []BusConfig{{Name: "m", Volume: 1.2}}, ErrInvalidValue},
		{"volume NaN", []BusConfig{{Name: "m", Volume: math.NaN()}}, ErrInvalidValue},
		{"no name", []BusConfig{{Name: "", Volume: 1}}, ErrInvalidValue},
	}
	for _, tt := range tests {
		if _, err := NewMixer(tt.buses); !errors.Is(err, tt.want) {
			t.Errorf("%s: NewMixer = %v, want %v", tt.name, err, tt.want)
		}
	}
	m, _ := NewMixer(nil)
	if err := m.SetVolume("nope", 1); !errors.Is(err, ErrUnknownBus) {
		t.Errorf("SetVolume(unknown) = %v", err)
	}
	if err := m.SetVolume("music", -1); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("SetVolume(-1) = %v", err)
	}
	if _, err := m.Gain("nope"); !errors.Is(err, ErrUnknownBus) {
		t.Errorf("Gain(unknown) = %v", err)
	}
	if err := m.SetMute("nope", true); !errors.Is(err, ErrUnknownBus) {
		t.Errorf("SetMute(unknown) = %v", err)
	}
}
