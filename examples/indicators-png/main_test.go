package main

import (
	"image/png"
	"os"
	"testing"
)

func TestRender(t *testing.T) {
	dir := t.TempDir()
	files, err := render(dir, 8)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 8 {
		t.Fatalf("wrote %d files, want 8", len(files))
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b := img.Bounds(); b.Dx() != 640 || b.Dy() != 360 {
			t.Errorf("%s: %v, want 640×360", name, b)
		}
	}
	if _, err := render(dir, 0); err == nil {
		t.Error("render(0 frames) succeeded")
	}
}
