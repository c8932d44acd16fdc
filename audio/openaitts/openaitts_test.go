package openaitts_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bodybroker/sdk/audio"
	"github.com/bodybroker/sdk/audio/openaitts"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func tone(seconds float64) []byte {
	s := make([]int16, int(24000*seconds))
	for i := range s {
		s[i] = int16(6000 * math.Sin(2*math.Pi*220*float64(i)/24000))
	}
	return audio.EncodeWAV(24000, 1, s)
}

func TestSynthesize(t *testing.T) {
	var got map[string]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/audio/speech" || r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer sk-test" {
			http.Error(w, "bad request line", http.StatusBadRequest)
			return
		}
		json.NewDecoder(r.Body).Decode(&got)
		w.Header().Set("Content-Type", "audio/wav")
		w.Write(tone(1.5))
	}))
	defer srv.Close()
	s, err := openaitts.New(openaitts.Options{BaseURL: srv.URL + "/v1/", APIKey: "sk-test", Voice: "nova"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Synthesize(context.Background(), audio.SpeechRequest{Text: "Hello there."})
	if err != nil {
		t.Fatal(err)
	}
	if c.Duration != 1500*time.Millisecond || c.ContentType != "audio/wav" {
		t.Errorf("clip %v %s", c.Duration, c.ContentType)
	}
	want := map[string]string{"model": "tts-1", "input": "Hello there.", "voice": "nova", "response_format": "wav"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("request %s = %q, want %q", k, got[k], v)
		}
	}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "key", openaitts.APIKey("sk-test"))
	if strings.Contains(b.String(), "sk-test") {
		t.Error("API key logged")
	}
}

func TestErrors(t *testing.T) {
	var answer func(w http.ResponseWriter)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { answer(w) }))
	defer srv.Close()
	s, _ := openaitts.New(openaitts.Options{BaseURL: srv.URL, MaxBytes: 100_000})
	ctx := context.Background()
	req := audio.SpeechRequest{Text: "Hi."}

	answer = func(w http.ResponseWriter) { http.Error(w, `{"error":"overloaded"}`, http.StatusServiceUnavailable) }
	var se *openaitts.StatusError
	if _, err := s.Synthesize(ctx, req); !errors.As(err, &se) || se.Code != 503 || !errors.Is(err, openaitts.ErrStatus) {
		t.Errorf("503: %v", err)
	}
	answer = func(w http.ResponseWriter) { w.Write(tone(5)) } // 240 kB
	if _, err := s.Synthesize(ctx, req); !errors.Is(err, openaitts.ErrTooLarge) {
		t.Errorf("oversize: %v", err)
	}
	answer = func(w http.ResponseWriter) { w.Write([]byte("ID3 an mp3")) }
	if _, err := s.Synthesize(ctx, req); !errors.Is(err, audio.ErrBadWAV) {
		t.Errorf("not WAV: %v", err)
	}
	if _, err := s.Synthesize(ctx, audio.SpeechRequest{Text: strings.Repeat("x", 5000)}); !errors.Is(err, audio.ErrInvalidValue) {
		t.Errorf("long input: %v", err)
	}
	if _, err := openaitts.New(openaitts.Options{}); !errors.Is(err, audio.ErrInvalidValue) {
		t.Errorf("no BaseURL: %v", err)
	}
	srv.CloseClientConnections()
}
