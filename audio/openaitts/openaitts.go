// Package openaitts is an [audio.Synthesizer] for OpenAI-compatible
// text-to-speech servers: POST {BaseURL}/audio/speech with
// {"model","input","voice","response_format":"wav"}, as OpenAI's
// /v1/audio/speech and compatible local servers (Kokoro-FastAPI,
// openedai-speech, LocalAI) accept it.
//
// A *Synthesizer is safe for concurrent use; it starts no goroutines of
// its own.
package openaitts

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/bodybroker/sdk/audio"
)

// ErrStatus wraps a non-2xx answer; the *StatusError has the code.
var ErrStatus = errors.New("openaitts: server error")

// ErrTooLarge: the answer exceeded Options.MaxBytes.
var ErrTooLarge = errors.New("openaitts: response too large")

// StatusError is a non-2xx answer.
type StatusError struct {
	Code int
	Body string // the first 512 bytes
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("openaitts: HTTP %d: %s", e.Code, e.Body)
}

func (e *StatusError) Unwrap() error { return ErrStatus }

// APIKey is a bearer token that redacts itself in logs.
type APIKey string

// LogValue implements slog.LogValuer.
func (APIKey) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// Options configures a Synthesizer. BaseURL is required.
type Options struct {
	// BaseURL is the API root, e.g. "https://api.openai.com/v1" or
	// "http://127.0.0.1:8880/v1".
	BaseURL string
	APIKey  APIKey
	// Model; "" means "tts-1".
	Model string
	// Voice is the default voice; "" means "alloy".
	Voice string
	// HTTPClient; nil means a client with a 60 s timeout.
	HTTPClient *http.Client
	// MaxBytes bounds a clip read back; 0 means 16 MiB.
	MaxBytes int64
	// MaxTextBytes bounds a request's input; 0 means 4096 (OpenAI's limit).
	MaxTextBytes int
}

// Synthesizer calls the speech endpoint.
type Synthesizer struct {
	opts Options
	url  string
}

var _ audio.Synthesizer = (*Synthesizer)(nil)

// New validates opts.
func New(opts Options) (*Synthesizer, error) {
	if opts.BaseURL == "" || opts.MaxBytes < 0 || opts.MaxTextBytes < 0 {
		return nil, fmt.Errorf("openaitts: BaseURL required, limits ≥ 0: %w", audio.ErrInvalidValue)
	}
	opts.Model = cmp.Or(opts.Model, "tts-1")
	opts.Voice = cmp.Or(opts.Voice, "alloy")
	opts.MaxBytes = cmp.Or(opts.MaxBytes, 16<<20)
	opts.MaxTextBytes = cmp.Or(opts.MaxTextBytes, 4096)
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	return &Synthesizer{opts: opts, url: strings.TrimSuffix(opts.BaseURL, "/") + "/audio/speech"}, nil
}

// Synthesize requests a WAV clip for req and returns it with its duration.
func (s *Synthesizer) Synthesize(ctx context.Context, req audio.SpeechRequest) (audio.Clip, error) {
	if strings.TrimSpace(req.Text) == "" || len(req.Text) > s.opts.MaxTextBytes {
		return audio.Clip{}, fmt.Errorf("openaitts: input of %d bytes (1..%d): %w", len(req.Text), s.opts.MaxTextBytes, audio.ErrInvalidValue)
	}
	body, _ := json.Marshal(map[string]string{
		"model": s.opts.Model, "input": req.Text, "voice": cmp.Or(req.Voice, s.opts.Voice), "response_format": "wav",
	})
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return audio.Clip{}, err
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "audio/wav")
	if s.opts.APIKey != "" {
		hr.Header.Set("Authorization", "Bearer "+string(s.opts.APIKey))
	}
	resp, err := s.opts.HTTPClient.Do(hr)
	if err != nil {
		return audio.Clip{}, fmt.Errorf("openaitts: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return audio.Clip{}, &StatusError{Code: resp.StatusCode, Body: string(b)}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, s.opts.MaxBytes+1))
	if err != nil {
		return audio.Clip{}, fmt.Errorf("openaitts: reading the clip: %w", err)
	}
	if int64(len(data)) > s.opts.MaxBytes {
		return audio.Clip{}, fmt.Errorf("%w: over %d bytes", ErrTooLarge, s.opts.MaxBytes)
	}
	audio.FixWAVSizes(data) // some servers stream WAV with placeholder sizes
	w, err := audio.ParseWAV(data)
	if err != nil {
		return audio.Clip{}, fmt.Errorf("openaitts: %w", err)
	}
	return audio.Clip{ContentType: "audio/wav", Data: data, Duration: w.Duration()}, nil
}
