package settings_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/settings"
	"github.com/google/go-cmp/cmp"
)

func newManager(t *testing.T, o settings.Options) *settings.Manager {
	t.Helper()
	m, err := settings.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func value(t *testing.T, r *settings.Resolved, key string) any {
	t.Helper()
	v, ok := r.Value(key)
	if !ok {
		t.Fatalf("no key %q", key)
	}
	return v
}

func TestOriginalDefaults(t *testing.T) {
	m := newManager(t, settings.Options{})
	r, err := m.Get(t.Context(), "p1", settings.Target{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"audio.master": 1.0, "audio.music": 0.8, "audio.voice": 1.0, "audio.effects": 1.0, "audio.ui": 0.7,
		"video.resolution": "1920x1080", "video.quality": int64(2), "video.window_mode": int64(0),
		"video.vsync": true, "video.frame_rate_limit": int64(60),
		"controls.sensitivity": 1.0, "controls.invert_y": false, "controls.bindings": map[string]string{},
		"gameplay.subtitles": true, "gameplay.difficulty": int64(1), "gameplay.autosave_interval": int64(5),
	}
	for k, w := range want {
		if got := value(t, r, k); !cmp.Equal(got, w) {
			t.Errorf("%s = %#v, want %#v", k, got, w)
		}
		st, _ := m.Schema().Lookup(k)
		if st.Since != 1 {
			t.Errorf("%s since %d, want 1 (the original's keys are version 1)", k, st.Since)
		}
	}
	st, _ := m.Schema().Lookup("gameplay.difficulty")
	if got := st.Label(int64(3)); got != "Nightmare" {
		t.Errorf("difficulty 3 label %q, want Nightmare", got)
	}
}

func TestSetValidatesEveryKey(t *testing.T) {
	m := newManager(t, settings.Options{})
	_, err := m.Set(t.Context(), "p1", []settings.Change{
		{Key: "audio.master", Value: 1.5},
		{Key: "video.vsync", Value: "yes"},
		{Key: "video.resolution", Value: "1000x1000"},
		{Key: "no.such", Value: 1},
		{Key: "controls.bindings", Value: map[string]any{"jump": "Space", "fire": "Space"}},
		{Key: "gameplay.language", Value: "en-US-x-pirate"},
		{Key: "audio.music", Value: 0.5}, // valid, but the write is all or nothing
		{Key: "audio.voice", Value: 0.5},
		{Key: "audio.voice", Value: 0.6},
	})
	var ve *settings.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want *ValidationError", err)
	}
	got := map[string]error{}
	for _, p := range ve.Problems {
		got[p.Key] = p.Err
	}
	want := map[string]error{
		"audio.master": settings.ErrOutOfRange, "video.vsync": settings.ErrWrongType,
		"video.resolution": settings.ErrNotAllowed, "no.such": settings.ErrUnknownKey,
		"controls.bindings": settings.ErrBindingConflict, "gameplay.language": settings.ErrNotAllowed,
		"audio.voice": settings.ErrNotAllowed, // changed twice
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
		t.Errorf("problems (-want +got):\n%s\n%v", diff, err)
	}
	if !errors.Is(err, settings.ErrOutOfRange) || !errors.Is(err, settings.ErrUnknownKey) {
		t.Errorf("errors.Is does not see the sentinels of %v", err)
	}
	r, _ := m.Get(t.Context(), "p1", settings.Target{})
	if got := value(t, r, "audio.music"); got != 0.8 {
		t.Errorf("audio.music = %v after a refused write, want 0.8", got)
	}
}

func TestSetStoresAndExpandsPreset(t *testing.T) {
	m := newManager(t, settings.Options{})
	ctx := t.Context()
	res, err := m.Set(ctx, "p1", []settings.Change{
		{Key: "video.quality", Value: 0},
		{Key: "video.shadows", Value: 3},
		{Key: "gameplay.language", Value: "pt-br"},
	})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := m.Get(ctx, "p1", settings.Target{})
	for k, want := range map[string]any{
		"video.quality": int64(0), "video.textures": int64(0), "video.foliage": int64(0),
		"video.shadows": int64(3), "gameplay.language": "pt-BR",
	} {
		if got := value(t, r, k); got != want {
			t.Errorf("%s = %#v, want %#v", k, got, want)
		}
	}
	if r.Rev("video.quality") != res.Rev || res.Rev == 0 {
		t.Errorf("rev of video.quality %d, result rev %d", r.Rev("video.quality"), res.Rev)
	}
}

func TestConcurrentEditsMergeByKey(t *testing.T) {
	m := newManager(t, settings.Options{})
	ctx := t.Context()
	r0, _ := m.Get(ctx, "p1", settings.Target{})
	// Two devices start from r0 and edit different keys: both land.
	if _, err := m.Set(ctx, "p1", []settings.Change{{Key: "controls.invert_y", Value: true, IfRev: r0.Rev("controls.invert_y")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Set(ctx, "p1", []settings.Change{{Key: "gameplay.subtitles", Value: false, IfRev: r0.Rev("gameplay.subtitles")}}); err != nil {
		t.Fatal(err)
	}
	r1, _ := m.Get(ctx, "p1", settings.Target{})
	if value(t, r1, "controls.invert_y") != true || value(t, r1, "gameplay.subtitles") != false {
		t.Fatalf("lost a write: invert_y %v subtitles %v", value(t, r1, "controls.invert_y"), value(t, r1, "gameplay.subtitles"))
	}
	// A stale write to the same key: invert_y rejects (ConflictReject).
	_, err := m.Set(ctx, "p1", []settings.Change{{Key: "controls.invert_y", Value: false, IfRev: r0.Rev("controls.invert_y")}})
	var ce *settings.ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, settings.ErrConflict) || !cmp.Equal(ce.Keys, []string{"controls.invert_y"}) {
		t.Fatalf("stale write: err %v, want a conflict on controls.invert_y", err)
	}
	// text_size keeps the larger (ConflictMax); sensitivity: last writer wins.
	if _, err := m.Set(ctx, "p1", []settings.Change{{Key: "accessibility.text_size", Value: 1.8}, {Key: "controls.sensitivity", Value: 2.0}}); err != nil {
		t.Fatal(err)
	}
	res, err := m.Set(ctx, "p1", []settings.Change{{Key: "accessibility.text_size", Value: 1.2}, {Key: "controls.sensitivity", Value: 3.0}})
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(res.Merged, []string{"accessibility.text_size", "controls.sensitivity"}) {
		t.Errorf("merged %v", res.Merged)
	}
	r2, _ := m.Get(ctx, "p1", settings.Target{})
	if got := value(t, r2, "accessibility.text_size"); got != 1.8 {
		t.Errorf("text_size %v, want 1.8 (max)", got)
	}
	if got := value(t, r2, "controls.sensitivity"); got != 3.0 {
		t.Errorf("sensitivity %v, want 3 (last writer)", got)
	}
}

func TestLayersAndExplain(t *testing.T) {
	m := newManager(t, settings.Options{
		Platforms: map[string]map[string]any{"deck": {"video.fov": 80, "video.frame_rate_limit": 40}},
		Devices:   map[string]map[string]any{"laptop": {"video.fov": 85}},
		Overrides: map[string]any{"video.motion_blur": false},
		Rules:     []settings.Rule{{Key: "video.fov", Mode: "ranked", Min: 60, Max: 110, Reason: "FOV limited to 110 in ranked"}},
	})
	ctx := t.Context()
	if _, err := m.Set(ctx, "p1", []settings.Change{{Key: "video.fov", Value: 120}, {Key: "video.motion_blur", Value: true}}); err != nil {
		t.Fatal(err)
	}
	r, _ := m.Get(ctx, "p1", settings.Target{Platform: "deck", Device: "laptop"})
	e, _ := r.Explain("video.fov")
	want := settings.Explanation{Key: "video.fov", Value: int64(120), Layer: settings.LayerPlayer, Shadowed: []settings.Source{
		{Layer: settings.LayerDevice, Value: int64(85)}, {Layer: settings.LayerPlatform, Value: int64(80)}, {Layer: settings.LayerDefault, Value: int64(90)},
	}}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("explain fov (-want +got):\n%s", diff)
	}
	if e, _ := r.Explain("video.motion_blur"); e.Layer != settings.LayerServer || e.Value != false {
		t.Errorf("motion_blur from %v = %v, want the server's false", e.Layer, e.Value)
	}
	if e, _ := r.Explain("video.frame_rate_limit"); e.Layer != settings.LayerPlatform || e.Value != int64(40) {
		t.Errorf("frame_rate_limit from %v = %v, want the platform's 40", e.Layer, e.Value)
	}
	ranked, _ := m.Get(ctx, "p1", settings.Target{Mode: "ranked"})
	e, _ = ranked.Explain("video.fov")
	if e.Value != int64(110) || !e.Clamped || e.Reason != "FOV limited to 110 in ranked" || e.Unclamped != int64(120) {
		t.Errorf("ranked fov %+v, want clamped to 110 with the reason", e)
	}
}

func TestResetToDefaults(t *testing.T) {
	m := newManager(t, settings.Options{})
	ctx := t.Context()
	if _, err := m.Set(ctx, "p1", []settings.Change{{Key: "audio.music", Value: 0.1}, {Key: "video.vsync", Value: false}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ResetToDefaults(ctx, "p1", "audio"); err != nil {
		t.Fatal(err)
	}
	r, _ := m.Get(ctx, "p1", settings.Target{})
	if value(t, r, "audio.music") != 0.8 || value(t, r, "video.vsync") != false {
		t.Errorf("after resetting audio: music %v (want 0.8), vsync %v (want false)", value(t, r, "audio.music"), value(t, r, "video.vsync"))
	}
	if _, err := m.ResetToDefaults(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	r, _ = m.Get(ctx, "p1", settings.Target{})
	if value(t, r, "video.vsync") != true {
		t.Errorf("after reset all: vsync %v", value(t, r, "video.vsync"))
	}
	if _, err := m.ResetToDefaults(ctx, "p1", "nope"); !errors.Is(err, settings.ErrUnknownKey) {
		t.Errorf("reset of unknown group: %v", err)
	}
}

func TestPreviewRevertsOnTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, settings.Options{})
		ctx := context.Background()
		sub, err := m.Subscribe(settings.Match{Groups: []string{"video"}})
		if err != nil {
			t.Fatal(err)
		}
		p, err := m.Begin(ctx, "p1", 15*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Preview(ctx, "p1", p.ID, map[string]any{"video.resolution": "3840x2160", "video.window_mode": 1}); err != nil {
			t.Fatal(err)
		}
		c := <-sub.C()
		if c.Kind != settings.KindPreviewed || len(c.Keys) != 2 {
			t.Fatalf("got %+v, want a preview of 2 keys", c)
		}
		r, _ := m.Get(ctx, "p1", settings.Target{})
		if value(t, r, "video.resolution") != "3840x2160" {
			t.Errorf("observers do not see the previewed resolution")
		}
		time.Sleep(15 * time.Second)
		synctest.Wait()
		select {
		case c = <-sub.C():
		default:
			t.Fatal("no revert after the timeout")
		}
		want := []settings.KeyChange{
			{Key: "video.resolution", Old: "3840x2160", New: "1920x1080"},
			{Key: "video.window_mode", Old: int64(1), New: int64(0)},
		}
		if c.Kind != settings.KindReverted || !cmp.Equal(c.Keys, want) {
			t.Errorf("revert %+v, want %+v", c, want)
		}
		r, _ = m.Get(ctx, "p1", settings.Target{})
		if value(t, r, "video.resolution") != "1920x1080" {
			t.Errorf("resolution after timeout %v", value(t, r, "video.resolution"))
		}
		if _, err := m.Confirm(ctx, "p1", p.ID); !errors.Is(err, settings.ErrNoPreview) {
			t.Errorf("confirm after timeout: %v, want ErrNoPreview", err)
		}
		if s := m.Stats(); s.PreviewsExpired != 1 || s.PreviewsOpen != 0 {
			t.Errorf("stats %+v", s)
		}
	})
}

func TestPreviewConfirmAndRevert(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, settings.Options{})
		ctx := context.Background()
		p, _ := m.Begin(ctx, "p1", 0)
		if err := m.Preview(ctx, "p1", p.ID, map[string]any{"audio.master": 0.5}); err != nil {
			t.Fatal(err)
		}
		if err := m.Preview(ctx, "p1", p.ID, map[string]any{"audio.master": 2}); !errors.Is(err, settings.ErrOutOfRange) {
			t.Errorf("invalid preview: %v", err)
		}
		res, err := m.Confirm(ctx, "p1", p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(res.Keys, []settings.KeyChange{{Key: "audio.master", Old: 1.0, New: 0.5}}) {
			t.Errorf("confirm keys %+v", res.Keys)
		}
		p2, _ := m.Begin(ctx, "p1", 0)
		_ = m.Preview(ctx, "p1", p2.ID, map[string]any{"audio.master": 0.2, "video.vsync": false})
		if err := m.Revert(ctx, "p1", p2.ID); err != nil {
			t.Fatal(err)
		}
		r, _ := m.Get(ctx, "p1", settings.Target{})
		if value(t, r, "audio.master") != 0.5 || value(t, r, "video.vsync") != true {
			t.Errorf("after revert: master %v vsync %v", value(t, r, "audio.master"), value(t, r, "video.vsync"))
		}
		if err := m.Revert(ctx, "p1", p2.ID); !errors.Is(err, settings.ErrNoPreview) {
			t.Errorf("second revert: %v", err)
		}
	})
}

func TestPreviewLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newManager(t, settings.Options{MaxPreviews: 2})
		ctx := context.Background()
		for _, p := range []string{"a", "b"} {
			if _, err := m.Begin(ctx, p, 0); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := m.Begin(ctx, "c", 0); !errors.Is(err, settings.ErrPreviewLimit) {
			t.Errorf("third preview: %v, want ErrPreviewLimit", err)
		}
		if _, err := m.Begin(ctx, "a", 0); err != nil { // replaces a's own
			t.Errorf("re-begin: %v", err)
		}
	})
}

func TestClose(t *testing.T) {
	m, _ := settings.New(settings.Options{})
	sub, _ := m.Subscribe(settings.Match{})
	if _, err := m.Begin(t.Context(), "p", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); !errors.Is(err, settings.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if _, ok := <-sub.C(); ok {
		t.Error("subscription open after Close")
	}
	if _, err := m.Get(t.Context(), "p", settings.Target{}); !errors.Is(err, settings.ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
}

func TestBadPlayer(t *testing.T) {
	m := newManager(t, settings.Options{})
	for _, p := range []string{"", string(make([]byte, settings.MaxPlayerIDBytes+1))} {
		if _, err := m.Get(t.Context(), p, settings.Target{}); !errors.Is(err, settings.ErrBadPlayer) {
			t.Errorf("Get(%d bytes): %v", len(p), err)
		}
	}
}

func TestOptionsValidated(t *testing.T) {
	for name, o := range map[string]settings.Options{
		"platform":  {Platforms: map[string]map[string]any{"x": {"video.fov": 500}}},
		"override":  {Overrides: map[string]any{"nope": 1}},
		"rule key":  {Rules: []settings.Rule{{Key: "video.vsync", Max: 1}}},
		"rule span": {Rules: []settings.Rule{{Key: "video.fov", Min: 100, Max: 90}}},
		"negative":  {MaxPreviews: -1},
	} {
		if _, err := settings.New(o); !errors.Is(err, settings.ErrInvalidOptions) {
			t.Errorf("%s: %v, want ErrInvalidOptions", name, err)
		}
	}
}

func TestServerOnlyAndSizeLimits(t *testing.T) {
	s, err := settings.Builtin().Extend(settings.BuiltinVersion, []settings.Setting{
		{Key: "studio.ranked_banned", Type: settings.Bool, Default: false, Since: 2, Tags: []settings.Tag{settings.TagServerOnly}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := newManager(t, settings.Options{Schema: s, MaxDocumentBytes: 512})
	ctx := t.Context()
	change := []settings.Change{{Key: "studio.ranked_banned", Value: false}}
	if _, err := m.Set(ctx, "p1", change); !errors.Is(err, settings.ErrServerOnly) {
		t.Errorf("client write of a server-only key: %v, want ErrServerOnly", err)
	}
	if _, err := m.SetServer(ctx, "p1", []settings.Change{{Key: "studio.ranked_banned", Value: true}}); err != nil {
		t.Errorf("server write: %v", err)
	}
	big := map[string]string{}
	for i := range 40 {
		big[fmt.Sprintf("action_%02d", i)] = fmt.Sprintf("Key_%02d", i)
	}
	if _, err := m.Set(ctx, "p1", []settings.Change{{Key: "controls.bindings", Value: big}}); !errors.Is(err, settings.ErrTooLarge) {
		t.Errorf("change set over MaxDocumentBytes: %v, want ErrTooLarge", err)
	}
	if got := m.Stats().Rejected; got != 2 {
		t.Errorf("Rejected %d, want 2", got)
	}
}

// A preview timing out while the Manager closes: Close waits for the
// revert in flight, and nothing runs after it returns.
func TestCloseDuringTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, _ := settings.New(settings.Options{})
		sub, _ := m.Subscribe(settings.Match{})
		ctx := context.Background()
		p, _ := m.Begin(ctx, "p1", time.Second)
		_ = m.Preview(ctx, "p1", p.ID, map[string]any{"audio.master": 0.1})
		<-sub.C()
		done := make(chan struct{})
		go func() {
			time.Sleep(time.Second) // wakes with the preview's timer
			_ = m.Close()
			close(done)
		}()
		<-done
		synctest.Wait()
		for c := range sub.C() { // closed by Close; at most the revert
			if c.Kind != settings.KindReverted {
				t.Errorf("after Close: %+v", c)
			}
		}
	})
}

func TestTagsSplitLocalAndShared(t *testing.T) {
	s := settings.Builtin()
	local, shared := s.Keys(settings.TagLocal), s.Keys(settings.TagShared)
	if len(local)+len(shared) != len(s.Keys()) {
		t.Errorf("%d local + %d shared keys, want every one of %d in exactly one", len(local), len(shared), len(s.Keys()))
	}
	for _, k := range local {
		if g, _, _ := strings.Cut(k, "."); g != "video" && k != "audio.speaker_mode" {
			t.Errorf("local key %s: only video and the speaker layout stay with a device", k)
		}
	}
	if got := s.Keys(settings.TagShared, settings.TagCompetitive); !cmp.Equal(got, []string{"video.fov", "controls.dead_zone_left", "controls.dead_zone_right"}) {
		t.Errorf("competitive shared keys %v", got)
	}
	wm, _ := s.Lookup("video.window_mode")
	fov, _ := s.Lookup("video.fov")
	if !wm.OnPlatform("pc") || wm.OnPlatform("ps5") || !fov.OnPlatform("ps5") {
		t.Errorf("platform tags: window mode on pc %v, on ps5 %v; fov on ps5 %v", wm.OnPlatform("pc"), wm.OnPlatform("ps5"), fov.OnPlatform("ps5"))
	}
}
