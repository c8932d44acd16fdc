package filestore

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/bodybroker/sdk/settings"
)

func profileWrites() []settings.Write {
	var ws []settings.Write
	for _, st := range settings.Builtin().Settings() {
		b, _ := json.Marshal(st.Default)
		ws = append(ws, settings.Write{Key: st.Key, Value: b, IfRev: settings.AnyRev})
	}
	bind := map[string]string{}
	for i := range 40 {
		bind[fmt.Sprintf("action_%02d", i)] = fmt.Sprintf("Key_%02d", i)
	}
	b, _ := json.Marshal(bind)
	return append(ws, settings.Write{Key: "controls.bindings", Value: b, IfRev: settings.AnyRev})
}

// BenchmarkSave: one key changed in a full profile, saved with the whole
// atomic sequence (read, temp file, write, fsync, rename, dir fsync).
// Compare with BenchmarkBareWriteFsync.
func BenchmarkSave(b *testing.B) {
	s, err := New(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	snap, err := s.Apply(ctx, "p1", 2, profileWrites())
	if err != nil {
		b.Fatal(err)
	}
	enc, _ := encode(snap)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := s.Apply(ctx, "p1", 2, []settings.Write{{Key: "audio.master", Value: json.RawMessage(fmt.Sprintf("0.%d", i%10)), IfRev: settings.AnyRev}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/save")
}

// BenchmarkBareWriteFsync writes the same bytes over one file and fsyncs
// it: the floor a save cannot go below, with none of its safety.
func BenchmarkBareWriteFsync(b *testing.B) {
	snap := settings.Snapshot{Entries: map[string]settings.Entry{}}
	_ = settings.ApplyWrites(&snap, 2, profileWrites())
	enc, _ := encode(snap)
	path := filepath.Join(b.TempDir(), "bare.json")
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Write(enc); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		_ = f.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/save")
}

// BenchmarkLoad reads and decodes a full profile's file.
func BenchmarkLoad(b *testing.B) {
	s, _ := New(Options{Dir: b.TempDir()})
	ctx := context.Background()
	if _, err := s.Apply(ctx, "p1", 2, profileWrites()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Load(ctx, "p1"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/load")
}

// BenchmarkGetFullProfile: the whole read path of a full profile from its
// file: read, decode, validate every value, resolve every layer.
func BenchmarkGetFullProfile(b *testing.B) {
	s, _ := New(Options{Dir: b.TempDir()})
	ctx := context.Background()
	if _, err := s.Apply(ctx, "p1", settings.BuiltinVersion, profileWrites()); err != nil {
		b.Fatal(err)
	}
	m, err := settings.New(settings.Options{Store: s})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Get(ctx, "p1", settings.Target{Mode: "ranked"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/profile")
}
