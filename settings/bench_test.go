package settings_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/bodybroker/sdk/settings"
)

// fullProfile sets every built-in key, with 40 key bindings.
func fullProfile() map[string]any {
	r := rand.New(rand.NewPCG(7, 8))
	v := map[string]any{}
	for _, st := range settings.Builtin().Settings() {
		v[st.Key] = randomValue(r, st)
	}
	b := map[string]string{}
	for i := range 40 {
		b[fmt.Sprintf("action_%02d", i)] = fmt.Sprintf("Key_%02d", i)
	}
	v["controls.bindings"] = b
	return v
}

// BenchmarkDecodeDocument: parse and validate a full profile sent as one
// document.
func BenchmarkDecodeDocument(b *testing.B) {
	s := settings.Builtin()
	doc, err := s.EncodeDocument(fullProfile())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.DecodeDocument(doc, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/profile")
}

// BenchmarkGetFullProfile: load a full stored profile from the memory
// store, decode and validate every value, resolve all layers.
func BenchmarkGetFullProfile(b *testing.B) {
	m, err := settings.New(settings.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	var cs []settings.Change
	for k, v := range fullProfile() {
		cs = append(cs, settings.Change{Key: k, Value: v, IfRev: settings.AnyRev})
	}
	if _, err := m.Set(ctx, "p1", cs); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Get(ctx, "p1", settings.Target{Mode: "ranked"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/profile")
}
