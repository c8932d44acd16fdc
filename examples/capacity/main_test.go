package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPlan(t *testing.T) {
	plotPath := filepath.Join(t.TempDir(), "capacity.png")
	var out, errOut bytes.Buffer
	args := []string{"-players", "200,400", "-curves", "1,2", "-duration", "30s", "-max-gpus", "4", "-plot", plotPath}
	if err := run(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("run: %v\n%s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var rows int
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) > 2 && (f[0] == "200" || f[0] == "400") {
			rows++
			if f[1] != "1" {
				t.Errorf("row %q: want 1 GPU for a few hundred players", l)
			}
		}
	}
	if rows != 2 {
		t.Errorf("%d table rows, want 2:\n%s", rows, out.String())
	}
	if !strings.Contains(errOut.String(), "4/4 simulations") {
		t.Errorf("progress bar %q, want it to reach 4/4", errOut.String())
	}
	f, err := os.Open(plotPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("plot: %v", err)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-players", "0"},
		{"-players", "ten"},
		{"-routing", "random"},
		{"-target", "2"},
		{"-duration", "0s"},
		{"-max-gpus", "0"},
	} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
