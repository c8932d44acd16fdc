package settings_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/settings"
	"github.com/google/go-cmp/cmp"
)

func newServer(t *testing.T, o settings.Options) (*settings.Manager, *httptest.Server) {
	t.Helper()
	m := newManager(t, o)
	auth, err := identity.NewTokenAuthenticator(map[identity.Token]identity.Identity{
		"tok-p1-0123456789":  {Kind: identity.KindPlayer, ID: "p1"},
		"tok-p2-0123456789":  {Kind: identity.KindPlayer, ID: "p2"},
		"tok-svc-0123456789": {Kind: identity.KindService, ID: "game-server"},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := m.Handler(settings.HandlerOptions{MaxBodyBytes: 4096, Authenticator: auth})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return m, srv
}

func call(t *testing.T, srv *httptest.Server, method, path, token, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token+"-0123456789") // tokens are ≥ 16 bytes
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return resp.StatusCode
}

func TestHTTPReadWrite(t *testing.T) {
	_, srv := newServer(t, settings.Options{})
	var got settings.Exported
	if code := call(t, srv, "GET", "/settings", "tok-p1", "", &got); code != 200 {
		t.Fatalf("GET: %d", code)
	}
	if got.Values["audio.music"] != 0.8 || got.Labels["gameplay.difficulty"] != "Normal" {
		t.Errorf("GET defaults: music %v, difficulty label %q", got.Values["audio.music"], got.Labels["gameplay.difficulty"])
	}
	var res settings.Result
	if code := call(t, srv, "PATCH", "/settings", "tok-p1", `{"changes":[{"key":"audio.music","value":0.25},{"key":"gameplay.difficulty","value":3}]}`, &res); code != 200 {
		t.Fatalf("PATCH: %d", code)
	}
	call(t, srv, "GET", "/settings", "tok-p1", "", &got)
	if got.Values["audio.music"] != 0.25 || got.Labels["gameplay.difficulty"] != "Nightmare" || got.Revs["audio.music"] != res.Rev {
		t.Errorf("after PATCH: %v %q rev %d (want %d)", got.Values["audio.music"], got.Labels["gameplay.difficulty"], got.Revs["audio.music"], res.Rev)
	}
	// Another player sees none of it; a service names the player.
	var other settings.Exported
	call(t, srv, "GET", "/settings", "tok-p2", "", &other)
	if other.Values["audio.music"] != 0.8 {
		t.Errorf("p2 sees p1's music %v", other.Values["audio.music"])
	}
	call(t, srv, "GET", "/settings?player=p1", "tok-svc", "", &other)
	if other.Values["audio.music"] != 0.25 {
		t.Errorf("service reading p1: %v", other.Values["audio.music"])
	}
	// A stale revision: difficulty rejects (409 with the current
	// revision), music is last-writer-wins (merged).
	var e settings.HTTPError
	if code := call(t, srv, "PATCH", "/settings", "tok-p1", `{"changes":[{"key":"gameplay.difficulty","value":0,"rev":0}]}`, &e); code != 409 ||
		e.Code != "conflict" || e.Conflicts["gameplay.difficulty"] != res.Rev {
		t.Errorf("stale difficulty: %d %+v", code, e)
	}
	var merged settings.Result
	if code := call(t, srv, "PATCH", "/settings", "tok-p1", `{"changes":[{"key":"audio.music","value":0.5,"rev":0}]}`, &merged); code != 200 ||
		!cmp.Equal(merged.Merged, []string{"audio.music"}) {
		t.Errorf("stale music: %d %+v", code, merged)
	}
}

func TestHTTPErrors(t *testing.T) {
	_, srv := newServer(t, settings.Options{})
	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		code                            string
	}{
		{"no token", "GET", "/settings", "", "", 401, "unauthenticated"},
		{"bad token", "GET", "/settings", "nope", "", 401, "unauthenticated"},
		{"service without player", "GET", "/settings", "tok-svc", "", 400, "invalid_argument"},
		{"malformed", "PATCH", "/settings", "tok-p1", `{"changes":[`, 400, "invalid_argument"},
		{"unknown field", "PATCH", "/settings", "tok-p1", `{"chnages":[]}`, 400, "invalid_argument"},
		{"oversize", "PATCH", "/settings", "tok-p1", `{"changes":[{"key":"a.b","value":"` + strings.Repeat("x", 5000) + `"}]}`, 413, "too_large"},
		{"no preview", "POST", "/settings/preview/nope/confirm", "tok-p1", "", 404, "not_found"},
		{"bad timeout", "POST", "/settings/preview", "tok-p1", `{"timeout":"1h"}`, 400, "invalid_argument"},
		{"unknown explain", "GET", "/settings/explain/x.y", "tok-p1", "", 400, "invalid_argument"},
		{"unknown path", "GET", "/nope", "tok-p1", "", 404, "not_found"},
		{"wrong method", "DELETE", "/settings", "tok-p1", "", 405, "unimplemented"},
	} {
		var e settings.HTTPError
		if code := call(t, srv, tc.method, tc.path, tc.token, tc.body, &e); code != tc.status || e.Code != tc.code {
			t.Errorf("%s: %d %+v, want %d %s", tc.name, code, e, tc.status, tc.code)
		}
	}
	var e settings.HTTPError
	code := call(t, srv, "PATCH", "/settings", "tok-p1",
		`{"changes":[{"key":"audio.master","value":3},{"key":"x.y","value":1},{"key":"video.vsync","value":"on"}]}`, &e)
	want := []settings.HTTPProblem{
		{Key: "audio.master", Code: "out_of_range", Reason: "3 outside [0, 1]"},
		{Key: "video.vsync", Code: "wrong_type", Reason: "want bool, got string"},
		{Key: "x.y", Code: "unknown_key", Reason: "unknown key"},
	}
	if code != 400 || !cmp.Equal(e.Problems, want) {
		t.Errorf("three bad keys: %d %+v\nwant %+v", code, e.Problems, want)
	}
}

func TestHTTPPreview(t *testing.T) {
	m, srv := newServer(t, settings.Options{})
	var p settings.PreviewInfo
	if code := call(t, srv, "POST", "/settings/preview", "tok-p1", `{"timeout":"1m","values":{"video.resolution":"1280x720"}}`, &p); code != 201 || p.ID == "" {
		t.Fatalf("begin: %d %+v", code, p)
	}
	r, _ := m.Get(t.Context(), "p1", settings.Target{})
	if v, _ := r.Value("video.resolution"); v != "1280x720" {
		t.Errorf("previewed resolution %v", v)
	}
	if code := call(t, srv, "POST", "/settings/preview/"+p.ID, "tok-p1", `{"values":{"video.vsync":false}}`, nil); code != 204 {
		t.Errorf("preview: %d", code)
	}
	// Another player cannot touch p1's preview.
	if code := call(t, srv, "POST", "/settings/preview/"+p.ID+"/confirm", "tok-p2", "", nil); code != 404 {
		t.Errorf("p2 confirming p1's preview: %d", code)
	}
	if code := call(t, srv, "POST", "/settings/preview/"+p.ID+"/revert", "tok-p1", "", nil); code != 204 {
		t.Errorf("revert: %d", code)
	}
	r, _ = m.Get(t.Context(), "p1", settings.Target{})
	if v, _ := r.Value("video.resolution"); v != "1920x1080" {
		t.Errorf("after revert: %v", v)
	}
	call(t, srv, "POST", "/settings/preview", "tok-p1", `{"values":{"audio.voice":0.5}}`, &p)
	var res settings.Result
	if code := call(t, srv, "POST", "/settings/preview/"+p.ID+"/confirm", "tok-p1", "", &res); code != 200 || len(res.Keys) != 1 {
		t.Errorf("confirm: %d %+v", code, res)
	}
	var reset settings.Result
	if code := call(t, srv, "POST", "/settings/reset", "tok-p1", `{"groups":["audio"]}`, &reset); code != 200 || len(reset.Keys) != 1 {
		t.Errorf("reset: %d %+v", code, reset)
	}
	var e settings.Explanation
	if code := call(t, srv, "GET", "/settings/explain/audio.voice", "tok-p1", "", &e); code != 200 || e.Layer != settings.LayerDefault {
		t.Errorf("explain: %d %+v", code, e)
	}
}

// Mounted behind a server's own authentication middleware, the handler
// takes the caller from the request's context.
func TestHTTPIdentityFromContext(t *testing.T) {
	m := newManager(t, settings.Options{})
	h := m.Handler(settings.HandlerOptions{})
	withID := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test-Player") != "" {
			r = r.WithContext(identity.NewContext(r.Context(), identity.Identity{Kind: identity.KindPlayer, ID: r.Header.Get("X-Test-Player")}))
		}
		h.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(withID)
	defer srv.Close()
	req, _ := http.NewRequestWithContext(context.Background(), "PATCH", srv.URL+"/settings", strings.NewReader(`{"changes":[{"key":"video.fov","value":100}]}`))
	req.Header.Set("X-Test-Player", "p9")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PATCH with an identity in the context: %d", resp.StatusCode)
	}
	r, _ := m.Get(t.Context(), "p9", settings.Target{})
	if v, _ := r.Value("video.fov"); v != int64(100) {
		t.Errorf("p9 fov %v", v)
	}
	resp, err = srv.Client().Get(srv.URL + "/settings")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("no identity: %d, want 401", resp.StatusCode)
	}
}
