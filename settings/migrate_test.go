package settings_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/bodybroker/sdk/settings"
	"github.com/google/go-cmp/cmp"
)

// randomValue returns a valid value of st.
func randomValue(r *rand.Rand, st *settings.Setting) any {
	if len(st.Choices) > 0 {
		return st.Choices[r.IntN(len(st.Choices))].Value
	}
	switch st.Type {
	case settings.Bool:
		return r.IntN(2) == 1
	case settings.Int:
		return int64(st.Min) + r.Int64N(int64(st.Max-st.Min)+1)
	case settings.Float:
		return st.Min + r.Float64()*(st.Max-st.Min)
	case settings.String:
		if st.Units == settings.UnitLanguage {
			return []string{"en", "pt-BR", "zh-Hant-TW", "es-419", "de"}[r.IntN(5)]
		}
		return fmt.Sprintf("s%d", r.IntN(100))
	case settings.Bindings:
		m := map[string]string{}
		for i := range r.IntN(6) {
			m[fmt.Sprintf("action%d", i)] = fmt.Sprintf("Key%d", i) // distinct keys: no conflict
		}
		return m
	}
	panic(st.Type)
}

// jsonValues round-trips values through JSON, as a store holds them.
func jsonValues(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMigrationProperties: any valid version 1 document (plus keys no
// schema knows) migrates to a valid current one; migrating again changes
// nothing; every user value of a key that still exists is kept; unknown
// keys are kept.
func TestMigrationProperties(t *testing.T) {
	s := settings.Builtin()
	r := rand.New(rand.NewPCG(1, 2))
	var v1 []*settings.Setting
	for _, st := range s.Settings() {
		if st.Since == 1 {
			v1 = append(v1, st)
		}
	}
	for i := range 500 {
		doc := map[string]any{}
		for _, st := range v1 {
			if r.IntN(3) > 0 {
				doc[st.Key] = randomValue(r, st)
			}
		}
		for j := range r.IntN(3) {
			doc[fmt.Sprintf("studio.future_%d", j)] = r.IntN(10)
		}
		stored := jsonValues(t, doc)
		got, err := s.Migrate(1, stored)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		known := map[string]any{}
		for k, v := range got {
			if _, ok := s.Lookup(k); ok {
				known[k] = v
			}
		}
		if _, err := s.Validate(known); err != nil {
			t.Fatalf("case %d: migrated document invalid: %v\n%v", i, err, got)
		}
		for k, v := range stored {
			if !cmp.Equal(got[k], v) {
				t.Fatalf("case %d: %s = %v after migration, want the user's %v", i, k, got[k], v)
			}
		}
		again, err := s.Migrate(s.Version(), got)
		if err != nil || !cmp.Equal(again, got) {
			t.Fatalf("case %d: migrating the current version changed it: %v", i, err)
		}
		// The quality preset reaches every scalability group the player
		// had not set.
		if q, ok := stored["video.quality"]; ok {
			for _, g := range settings.ScalabilityGroups() {
				if got[g] != q {
					t.Fatalf("case %d: %s = %v, want the preset %v", i, g, got[g], q)
				}
			}
		}
	}
}

// TestManagerMigratesStoredDocuments stores a version 1 snapshot, as a
// server of the original schema would, and reads it through a current
// Manager: values kept, scalability expanded, unknown keys untouched, the
// stored schema version raised once.
func TestManagerMigratesStoredDocuments(t *testing.T) {
	ctx := context.Background()
	store := &settings.MemoryStore{}
	raw := func(v any) json.RawMessage { b, _ := json.Marshal(v); return b }
	_, err := store.Apply(ctx, "p1", 1, []settings.Write{
		{Key: "video.quality", Value: raw(0)},
		{Key: "audio.music", Value: raw(0.3)},
		{Key: "controls.bindings", Value: raw(map[string]string{"jump": "Space"})},
		{Key: "studio.unknown", Value: raw("keep me")},
	})
	if err != nil {
		t.Fatal(err)
	}
	m := newManager(t, settings.Options{Store: store})
	r, err := m.Get(ctx, "p1", settings.Target{})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"video.quality": int64(0), "video.shadows": int64(0), "video.foliage": int64(0), "audio.music": 0.3,
		"controls.bindings": map[string]string{"jump": "Space"},
	} {
		if got := value(t, r, k); !cmp.Equal(got, want) {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	snap, _ := store.Load(ctx, "p1")
	if snap.Schema != settings.BuiltinVersion || string(snap.Entries["studio.unknown"].Value) != `"keep me"` {
		t.Errorf("stored after migration: schema %d, unknown %s", snap.Schema, snap.Entries["studio.unknown"].Value)
	}
	rev := snap.Rev
	if _, err := m.Get(ctx, "p1", settings.Target{}); err != nil {
		t.Fatal(err)
	}
	if snap, _ = store.Load(ctx, "p1"); snap.Rev != rev {
		t.Errorf("second read wrote again: rev %d → %d", rev, snap.Rev)
	}
	if got := m.Stats().Migrated; got != 1 {
		t.Errorf("Migrated = %d, want 1", got)
	}
}

func TestDecodeDocument(t *testing.T) {
	s := settings.Builtin()
	got, err := s.DecodeDocument([]byte(`{"version":1,"values":{"video.quality":3,"audio.ui":0.5}}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got["video.textures"] != int64(3) || got["audio.ui"] != 0.5 {
		t.Errorf("decoded v1 document: %v", got)
	}
	for name, tc := range map[string]struct {
		in   string
		want error
	}{
		"malformed":  {`{"version":2,"values":`, settings.ErrMalformed},
		"trailing":   {`{"version":2,"values":{}} x`, settings.ErrMalformed},
		"extra":      {`{"version":2,"values":{},"x":1}`, settings.ErrMalformed},
		"newer":      {`{"version":99,"values":{}}`, settings.ErrMalformed},
		"unknown":    {`{"version":2,"values":{"a.b":1}}`, settings.ErrUnknownKey},
		"wrong type": {`{"version":2,"values":{"video.vsync":1}}`, settings.ErrWrongType},
		"oversize":   {`{"version":2,"values":{"gameplay.language":"` + string(make([]byte, 100)) + `"}}`, settings.ErrTooLarge},
	} {
		max := 0
		if name == "oversize" {
			max = 64
		}
		if _, err := s.DecodeDocument([]byte(tc.in), max); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	_, err = s.DecodeDocument([]byte(`{"version":2,"values":{"a.b":1,"audio.master":7,"video.fov":"wide"}}`), 0)
	var ve *settings.ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 3 {
		t.Errorf("three bad keys: %v, want all three listed", err)
	}
}

// TestResolveProperties: for random layers, the effective value is the
// highest layer's valid value, and Explain lists every lower one.
func TestResolveProperties(t *testing.T) {
	s := settings.Builtin()
	r := rand.New(rand.NewPCG(3, 4))
	all := s.Settings()
	for i := range 300 {
		layers := map[settings.Layer]map[string]any{}
		for l := settings.LayerPlatform; l <= settings.LayerServer; l++ {
			layers[l] = map[string]any{}
			for _, st := range all {
				if r.IntN(4) == 0 {
					layers[l][st.Key] = randomValue(r, st)
				}
			}
		}
		res := s.Resolve(layers, "", nil)
		for _, st := range all {
			want, wantLayer, below := st.Default, settings.LayerDefault, 0
			for l := settings.LayerPlatform; l <= settings.LayerServer; l++ {
				if v, ok := layers[l][st.Key]; ok {
					want, wantLayer = v, l
					below++
				}
			}
			e, _ := res.Explain(st.Key)
			if !cmp.Equal(e.Value, want) || e.Layer != wantLayer || len(e.Shadowed) != below {
				t.Fatalf("case %d %s: %v from %v shadowing %d, want %v from %v shadowing %d",
					i, st.Key, e.Value, e.Layer, len(e.Shadowed), want, wantLayer, below)
			}
		}
	}
}

// TestConcurrentDevicesMerge: two devices read the same state and each
// edits its own random keys from that stale view; every edit lands.
func TestConcurrentDevicesMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	m := newManager(t, settings.Options{})
	ctx := context.Background()
	all := m.Schema().Settings()
	for i := range 50 {
		player := fmt.Sprintf("p%d", i)
		view, _ := m.Get(ctx, player, settings.Target{})
		perm := r.Perm(len(all))
		want := map[string]any{}
		for d := range 2 {
			var cs []settings.Change
			for _, j := range perm[d*5 : d*5+5] {
				st := all[j]
				if st.Key == "video.quality" {
					continue // it also sets the scalability groups
				}
				v := randomValue(r, st)
				cs = append(cs, settings.Change{Key: st.Key, Value: v, IfRev: view.Rev(st.Key)})
				want[st.Key] = v
			}
			if _, err := m.Set(ctx, player, cs); err != nil {
				t.Fatalf("case %d device %d: %v", i, d, err)
			}
		}
		got, _ := m.Get(ctx, player, settings.Target{})
		norm, _ := m.Schema().Validate(want)
		have := got.Values()
		maps.DeleteFunc(have, func(k string, _ any) bool { _, ok := norm[k]; return !ok })
		if diff := cmp.Diff(norm, have); diff != "" {
			t.Fatalf("case %d: lost edits (-want +got):\n%s", i, diff)
		}
	}
}

// racingStore lets another server migrate the same document between
// the Manager's Load and its Apply.
type racingStore struct {
	settings.MemoryStore
	once func()
}

func (s *racingStore) Apply(ctx context.Context, player string, schema int, ws []settings.Write) (settings.Snapshot, error) {
	if f := s.once; f != nil {
		s.once = nil
		f()
	}
	return s.MemoryStore.Apply(ctx, player, schema, ws)
}

func TestConcurrentMigrationRetries(t *testing.T) {
	ctx := context.Background()
	store := &racingStore{}
	if _, err := store.MemoryStore.Apply(ctx, "p1", 1, []settings.Write{{Key: "video.quality", Value: json.RawMessage(`1`)}}); err != nil {
		t.Fatal(err)
	}
	other := newManager(t, settings.Options{Store: &store.MemoryStore})
	store.once = func() {
		if _, err := other.Get(ctx, "p1", settings.Target{}); err != nil {
			t.Error(err)
		}
	}
	m := newManager(t, settings.Options{Store: store})
	r, err := m.Get(ctx, "p1", settings.Target{})
	if err != nil {
		t.Fatalf("Get racing another server's migration: %v", err)
	}
	if v, _ := r.Value("video.textures"); v != int64(1) {
		t.Errorf("video.textures %v, want the preset 1", v)
	}
}

func TestExtendSchema(t *testing.T) {
	s, err := settings.Builtin().Extend(3, []settings.Setting{
		{Key: "studio.crosshair", Type: settings.String, Default: "dot", Since: 3,
			Choices: []settings.Choice{{Value: "dot", Label: "Dot"}, {Value: "cross", Label: "Cross"}}},
	}, map[int]settings.Migration{2: func(map[string]any) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	m := newManager(t, settings.Options{Schema: s})
	if _, err := m.Set(context.Background(), "p1", []settings.Change{{Key: "studio.crosshair", Value: "cross"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Set(context.Background(), "p1", []settings.Change{{Key: "studio.crosshair", Value: "circle"}}); !errors.Is(err, settings.ErrNotAllowed) {
		t.Errorf("circle: %v, want ErrNotAllowed", err)
	}
	for name, tc := range map[string]struct {
		v  int
		ss []settings.Setting
		ms map[int]settings.Migration
	}{
		"duplicate":      {3, []settings.Setting{{Key: "audio.music", Type: settings.Float, Default: 0.5, Since: 3}}, map[int]settings.Migration{2: func(map[string]any) error { return nil }}},
		"no migration":   {3, []settings.Setting{{Key: "studio.x", Type: settings.Bool, Default: false, Since: 3}}, nil},
		"bad default":    {2, []settings.Setting{{Key: "studio.x", Type: settings.Int, Default: 9, Min: 0, Max: 1, HasRange: true, Since: 2}}, nil},
		"bad key":        {2, []settings.Setting{{Key: "Studio X", Type: settings.Bool, Default: false, Since: 2}}, nil},
		"since too late": {2, []settings.Setting{{Key: "studio.x", Type: settings.Bool, Default: false, Since: 5}}, nil},
	} {
		if _, err := settings.Builtin().Extend(tc.v, tc.ss, tc.ms); !errors.Is(err, settings.ErrInvalidSchema) {
			t.Errorf("%s: %v, want ErrInvalidSchema", name, err)
		}
	}
}
