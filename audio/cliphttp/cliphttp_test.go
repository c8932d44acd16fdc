package cliphttp_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bodybroker/sdk/audio"
	"github.com/bodybroker/sdk/audio/cliphttp"
	"github.com/bodybroker/sdk/audio/espeak"
	"github.com/bodybroker/sdk/internal/servicetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, c *http.Client, method, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestServe(t *testing.T) {
	store, _ := audio.NewMemoryClipStore(0)
	clip, _ := store.Put(context.Background(), audio.Clip{ContentType: "audio/wav", Data: audio.EncodeWAV(8000, 1, make([]int16, 1000))})
	srv := httptest.NewServer(http.StripPrefix("/clips/", cliphttp.Handler{Store: store}))
	defer srv.Close()
	c := srv.Client()
	url := srv.URL + "/clips/" + clip.ID

	resp, body := get(t, c, "GET", url)
	if resp.StatusCode != 200 || len(body) != len(clip.Data) || resp.Header.Get("Content-Type") != "audio/wav" || resp.Header.Get("ETag") != `"`+clip.ID+`"` {
		t.Errorf("GET: %d, %d bytes, %v", resp.StatusCode, len(body), resp.Header)
	}
	resp, body = get(t, c, "GET", url, "Range", "bytes=44-143")
	if resp.StatusCode != http.StatusPartialContent || len(body) != 100 || resp.Header.Get("Content-Range") != "bytes 44-143/2044" {
		t.Errorf("range: %d, %d bytes, %q", resp.StatusCode, len(body), resp.Header.Get("Content-Range"))
	}
	if resp, _ = get(t, c, "GET", url, "If-None-Match", `"`+clip.ID+`"`); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", resp.StatusCode)
	}
	if resp, body = get(t, c, "HEAD", url); resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != 2044 {
		t.Errorf("HEAD: %d %d", resp.StatusCode, resp.ContentLength)
	}
	if resp, _ = get(t, c, "GET", srv.URL+"/clips/nope.wav"); resp.StatusCode != 404 {
		t.Errorf("unknown clip: %d", resp.StatusCode)
	}
	if resp, _ = get(t, c, "POST", url); resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}

// TestReplySpokenAndServed: an NPC reply streams in, espeak-ng speaks it
// sentence by sentence, the director schedules the clips, and a client
// fetches each clip over HTTP (the second one in two range requests) and
// decodes it.
func TestReplySpokenAndServed(t *testing.T) {
	synth, err := espeak.New(espeak.Options{Path: servicetest.Espeak(t)})
	if err != nil {
		t.Fatal(err)
	}
	store, _ := audio.NewMemoryClipStore(0)
	d, err := audio.New(audio.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	sp, err := audio.NewSpeaker(audio.SpeakerOptions{Synthesizer: synth, Store: store, Director: d, Line: audio.VoiceLine{NPC: "mara", Session: "s1"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.StripPrefix("/clips/", cliphttp.Handler{Store: store}))
	defer srv.Close()
	ctx := context.Background()
	for _, chunk := range []string{"The boat lea", "ves at dawn. Be there ", "early, friend."} {
		if _, err := sp.Write(ctx, chunk); err != nil {
			t.Fatal(err)
		}
		if chunk == "The boat lea" && len(sp.Cues()) != 0 {
			t.Fatal("spoke half a word")
		}
		if chunk == "ves at dawn. Be there " && len(sp.Cues()) != 1 {
			t.Fatalf("first sentence not spoken before the reply ended: %+v", sp.Cues())
		}
	}
	if _, err := sp.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cues := sp.Cues()
	if len(cues) != 2 || !cues[1].At.Equal(cues[0].At.Add(cues[0].Duration)) {
		t.Fatalf("clips %+v: want two, back to back", cues)
	}
	for i, cue := range cues {
		url := srv.URL + "/clips/" + cue.Clip
		var data []byte
		if i == 0 {
			_, data = get(t, srv.Client(), "GET", url)
		} else {
			_, a := get(t, srv.Client(), "GET", url, "Range", "bytes=0-999")
			_, b := get(t, srv.Client(), "GET", url, "Range", "bytes=1000-")
			data = append(a, b...)
		}
		w, err := audio.ParseWAV(data)
		if err != nil {
			t.Fatal(err)
		}
		if w.SampleRate != 22050 || w.BitsPerSample != 16 || w.Duration() != cue.Duration || w.Duration() < 300*time.Millisecond || !(w.RMSDB() > -40) {
			t.Errorf("clip %d: %d Hz %d bit, %v (cue says %v), %.1f dBFS", i, w.SampleRate, w.BitsPerSample, w.Duration(), cue.Duration, w.RMSDB())
		}
	}
	if st := d.Stats(); st.Voices.Playing != 1 {
		t.Errorf("the line is not playing: %+v", st.Voices)
	}
}
