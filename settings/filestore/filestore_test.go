package filestore

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bodybroker/sdk/settings"
	"github.com/bodybroker/sdk/settings/settingstest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv("FILESTORE_CRASH_WRITER") != "" {
		crashWriter(os.Getenv("FILESTORE_CRASH_WRITER"))
		return
	}
	goleak.VerifyTestMain(m)
}

func newStore(t *testing.T, o Options) *Store {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	settingstest.TestStore(t, func(t *testing.T) settings.Store { return newStore(t, Options{}) })
}

func TestFileNamesStayInDir(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, Options{Dir: filepath.Join(dir, "players")})
	for _, p := range []string{"../../escape", "/etc/passwd", "a/b", "C:\\x", ".", "..", "Ab", "ab"} {
		if _, err := s.Apply(t.Context(), p, 2, []settings.Write{{Key: "a.x", Value: json.RawMessage(`1`)}}); err != nil {
			t.Fatalf("%q: %v", p, err)
		}
	}
	top, _ := os.ReadDir(dir)
	if len(top) != 1 || top[0].Name() != "players" {
		t.Errorf("files outside the store's directory: %v", top)
	}
	files, _ := os.ReadDir(filepath.Join(dir, "players"))
	if len(files) != 8 {
		t.Errorf("%d files, want 8 (one per player)", len(files))
	}
	for _, f := range files {
		if strings.Trim(strings.TrimSuffix(f.Name(), ".json"), "abcdefghijklmnopqrstuvwxyz234567") != "" {
			t.Errorf("file name %q has characters outside [a-z2-7]", f.Name())
		}
	}
	for _, p := range []string{"", strings.Repeat("x", MaxPlayerIDBytes+1)} {
		if _, err := s.Load(t.Context(), p); !errors.Is(err, ErrBadPlayer) {
			t.Errorf("Load(%d bytes): %v, want ErrBadPlayer", len(p), err)
		}
	}
}

func TestMalformedFileQuarantined(t *testing.T) {
	for name, content := range map[string]string{
		"truncated": `{"format":1,"schema":2,"rev":3,"entries":{"a.x":{"v":1,"r":3}`,
		"garbage":   "\x00\x01not json",
		"trailing":  `{"format":1,"schema":2,"rev":1,"entries":{}} {}`,
		"bad rev":   `{"format":1,"schema":2,"rev":1,"entries":{"a.x":{"v":1,"r":5}}}`,
		"oversize":  `{"format":1,"schema":2,"rev":1,"entries":{"a.x":{"v":"` + strings.Repeat("x", 2000) + `","r":1}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			var reported []string
			s := newStore(t, Options{MaxFileBytes: 1024, Now: func() time.Time { return time.Unix(0, 42) },
				OnQuarantine: func(p, path string, err error) { reported = append(reported, p+" "+filepath.Base(path)) }})
			fn, _ := FileName("p1")
			path := filepath.Join(s.opts.Dir, fn)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			snap, err := s.Load(t.Context(), "p1")
			if err != nil || len(snap.Entries) != 0 {
				t.Fatalf("Load: %+v, %v; want empty and no error", snap, err)
			}
			want := "p1 " + fn + ".corrupt-42"
			if len(reported) != 1 || reported[0] != want {
				t.Errorf("reported %v, want [%s]", reported, want)
			}
			kept, err := os.ReadFile(path + ".corrupt-42")
			if err != nil || string(kept) != content {
				t.Errorf("quarantined file %q, %v; want the original bytes", kept, err)
			}
			// The next save creates a fresh file and leaves the quarantined one.
			if _, err := s.Apply(t.Context(), "p1", 2, []settings.Write{{Key: "a.x", Value: json.RawMessage(`2`)}}); err != nil {
				t.Fatal(err)
			}
			if kept2, _ := os.ReadFile(path + ".corrupt-42"); string(kept2) != content {
				t.Error("quarantined file changed")
			}
		})
	}
}

func TestSaveOverLimit(t *testing.T) {
	s := newStore(t, Options{MaxFileBytes: 256})
	_, err := s.Apply(t.Context(), "p", 2, []settings.Write{{Key: "a.x", Value: json.RawMessage(`"` + strings.Repeat("x", 300) + `"`)}})
	if !errors.Is(err, settings.ErrTooLarge) {
		t.Errorf("oversize save: %v, want ErrTooLarge", err)
	}
}

// failingFile writes part of what it is given and then fails, as a full
// disk or a crash would leave a temporary file.
type failingFile struct {
	*os.File
	failAt string // "write", "sync"
}

func (f *failingFile) Write(b []byte) (int, error) {
	if f.failAt == "write" {
		n, _ := f.File.Write(b[:len(b)/2])
		return n, errors.New("disk full")
	}
	return f.File.Write(b)
}

func (f *failingFile) Sync() error {
	if f.failAt == "sync" {
		return errors.New("I/O error")
	}
	return f.File.Sync()
}

func TestFailedSaveKeepsPreviousFile(t *testing.T) {
	for _, failAt := range []string{"write", "sync"} {
		t.Run(failAt, func(t *testing.T) {
			s := newStore(t, Options{})
			ctx := t.Context()
			first, err := s.Apply(ctx, "p", 2, []settings.Write{{Key: "a.x", Value: json.RawMessage(`"old"`)}})
			if err != nil {
				t.Fatal(err)
			}
			fn, _ := FileName("p")
			before, _ := os.ReadFile(filepath.Join(s.opts.Dir, fn))
			s.create = func(dir, pattern string) (file, error) {
				f, err := os.CreateTemp(dir, pattern)
				return &failingFile{File: f, failAt: failAt}, err
			}
			if _, err := s.Apply(ctx, "p", 2, []settings.Write{{Key: "a.x", Value: json.RawMessage(`"new"`), IfRev: first.Rev}}); err == nil {
				t.Fatal("save with a failing writer succeeded")
			}
			after, _ := os.ReadFile(filepath.Join(s.opts.Dir, fn))
			if string(after) != string(before) {
				t.Errorf("file changed by a failed save:\n%s\nwant\n%s", after, before)
			}
			files, _ := os.ReadDir(s.opts.Dir)
			if len(files) != 1 {
				t.Errorf("files left: %v, want only %s", files, fn)
			}
			snap, err := s.Load(ctx, "p")
			if err != nil || string(snap.Entries["a.x"].Value) != `"old"` {
				t.Errorf("after failed save: %+v, %v", snap, err)
			}
		})
	}
}

// crashWriter saves ever-changing ~64 KiB documents until it is killed,
// printing each revision it saved.
func crashWriter(dir string) {
	s, err := New(Options{Dir: dir})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	big := strings.Repeat("x", 64<<10)
	for i := 0; ; i++ {
		snap, err := s.Apply(context.Background(), "p", 2, []settings.Write{
			{Key: "a.x", Value: json.RawMessage(strconv.Quote(big[:len(big)-i%100] + strconv.Itoa(i))), IfRev: settings.AnyRev},
		})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("saved", snap.Rev)
	}
}

// TestKilledWriterLeavesAWholeFile kills a process in the middle of its
// saves (SIGKILL, at no chosen point) and checks that the file it leaves
// is a whole document, at least as new as the last save it reported.
func TestKilledWriterLeavesAWholeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	dir := t.TempDir()
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "FILESTORE_CRASH_WRITER="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		var last int64
		for saves := 0; saves < 5+round*7 && sc.Scan(); saves++ {
			f := strings.Fields(sc.Text())
			if len(f) != 2 || f[0] != "saved" {
				t.Fatalf("writer: %s", sc.Text())
			}
			last, _ = strconv.ParseInt(f[1], 10, 64)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if last == 0 {
			t.Fatal("the writer saved nothing")
		}
		var quarantined []string
		s := newStore(t, Options{Dir: dir, OnQuarantine: func(_, p string, _ error) { quarantined = append(quarantined, p) }})
		snap, err := s.Load(t.Context(), "p")
		if err != nil || quarantined != nil {
			t.Fatalf("round %d: load after kill: %v, quarantined %v", round, err, quarantined)
		}
		if snap.Rev < last {
			t.Errorf("round %d: rev %d, want ≥ %d, the last reported save", round, snap.Rev, last)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"format":1,"schema":2,"rev":3,"entries":{"a.x":{"v":1,"r":3}}}`))
	f.Add([]byte(`{"format":1,"schema":0,"rev":0,"entries":null}`))
	f.Add([]byte(`{"format":1`))
	f.Fuzz(func(t *testing.T, b []byte) {
		snap, err := Decode(b)
		if err != nil {
			if !errors.Is(err, settings.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// A decoded document encodes to one that decodes the same.
		b2, err := encode(snap)
		if err != nil {
			t.Fatal(err)
		}
		snap2, err := Decode(b2)
		if err != nil || snap2.Rev != snap.Rev || len(snap2.Entries) != len(snap.Entries) {
			t.Fatalf("round trip: %+v, %v; want %+v", snap2, err, snap)
		}
	})
}
