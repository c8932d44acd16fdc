package settings_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/bodybroker/sdk/settings"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n%s\nwant:\n%s", name, got, want)
	}
}

func exportFixture(t *testing.T) (*settings.Manager, *settings.Resolved) {
	m := newManager(t, settings.Options{})
	ctx := t.Context()
	if _, err := m.Set(ctx, "p1", []settings.Change{
		{Key: "video.resolution", Value: "2560x1440"},
		{Key: "video.window_mode", Value: settings.WindowWindowed},
		{Key: "video.quality", Value: 3},
		{Key: "video.shadows", Value: 1},
		{Key: "controls.bindings", Value: map[string]string{"jump": "SpaceBar", "fire": "LeftMouseButton"}},
		{Key: "gameplay.difficulty", Value: 2},
	}); err != nil {
		t.Fatal(err)
	}
	r, err := m.Get(ctx, "p1", settings.Target{})
	if err != nil {
		t.Fatal(err)
	}
	return m, r
}

func TestExportINI(t *testing.T) {
	_, r := exportFixture(t)
	golden(t, "GameUserSettings.ini", settings.ExportINI(r))
}

func TestExportJSON(t *testing.T) {
	m, r := exportFixture(t)
	b, err := settings.ExportJSON(m.Schema(), r)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_ = json.Indent(&out, b, "", "  ")
	out.WriteByte('\n')
	golden(t, "export.json", out.Bytes())
}
