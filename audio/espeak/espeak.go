// Package espeak is a local [audio.Synthesizer] on the espeak-ng program
// (Debian package espeak-ng): robotic, but offline, fast and free, for
// demos and tests. Each call runs espeak-ng once and reads a 16-bit mono
// 22,050 Hz WAV from its standard output.
//
// A *Synthesizer is safe for concurrent use; it starts a process per call,
// bounded by Options.MaxConcurrent, and each process ends with its call
// (killed when ctx ends).
package espeak

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"

	"github.com/bodybroker/sdk/audio"
)

// ErrTextTooLong: text over Options.MaxTextBytes.
var ErrTextTooLong = errors.New("espeak: text too long")

// ErrOutputTooLarge: espeak-ng wrote more than Options.MaxOutputBytes.
var ErrOutputTooLarge = errors.New("espeak: output too large")

// Options configures a Synthesizer. The zero value finds espeak-ng on
// PATH and uses its default voice and speed.
type Options struct {
	// Path of the program; "" means "espeak-ng" on PATH.
	Path string
	// Voice is the default voice ("en-us", "en+f3"); a request's Voice
	// overrides it. "" means espeak-ng's default.
	Voice string
	// WordsPerMinute; 0 means espeak-ng's default (175).
	WordsPerMinute int
	// MaxTextBytes bounds a request's text; 0 means 4096.
	MaxTextBytes int
	// MaxOutputBytes bounds the WAV read back; 0 means 16 MiB (about six
	// minutes of speech).
	MaxOutputBytes int
	// MaxConcurrent bounds processes running at once; 0 means 4.
	MaxConcurrent int
}

// Synthesizer runs espeak-ng.
type Synthesizer struct {
	opts Options
	path string
	sem  chan struct{}
}

var _ audio.Synthesizer = (*Synthesizer)(nil)

// New finds the program and validates opts; exec.ErrNotFound (wrapped)
// when espeak-ng is not installed.
func New(opts Options) (*Synthesizer, error) {
	if opts.MaxTextBytes < 0 || opts.MaxOutputBytes < 0 || opts.MaxConcurrent < 0 || opts.WordsPerMinute < 0 {
		return nil, fmt.Errorf("espeak: negative option: %w", audio.ErrInvalidValue)
	}
	if opts.Path == "" {
		opts.Path = "espeak-ng"
	}
	if opts.MaxTextBytes == 0 {
		opts.MaxTextBytes = 4096
	}
	if opts.MaxOutputBytes == 0 {
		opts.MaxOutputBytes = 16 << 20
	}
	if opts.MaxConcurrent == 0 {
		opts.MaxConcurrent = 4
	}
	path, err := exec.LookPath(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("espeak: %w", err)
	}
	return &Synthesizer{opts: opts, path: path, sem: make(chan struct{}, opts.MaxConcurrent)}, nil
}

// Synthesize speaks req.Text and returns a WAV clip with its duration.
func (s *Synthesizer) Synthesize(ctx context.Context, req audio.SpeechRequest) (audio.Clip, error) {
	if len(req.Text) > s.opts.MaxTextBytes {
		return audio.Clip{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTextTooLong, len(req.Text), s.opts.MaxTextBytes)
	}
	if strings.TrimSpace(req.Text) == "" {
		return audio.Clip{}, fmt.Errorf("espeak: empty text: %w", audio.ErrInvalidValue)
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		return audio.Clip{}, ctx.Err()
	}
	args := []string{"--stdout"}
	if v := cmp.Or(req.Voice, s.opts.Voice); v != "" {
		args = append(args, "-v", v)
	}
	if s.opts.WordsPerMinute > 0 {
		args = append(args, "-s", strconv.Itoa(s.opts.WordsPerMinute))
	}
	// Text on stdin, never as an argument: it cannot be read as a flag.
	cmd := exec.CommandContext(ctx, s.path, args...)
	cmd.Stdin = strings.NewReader(req.Text)
	var stderr bytes.Buffer
	cmd.Stderr = &limitedWriter{w: &stderr, n: 4096}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return audio.Clip{}, err
	}
	if err := cmd.Start(); err != nil {
		return audio.Clip{}, fmt.Errorf("espeak: %w", err)
	}
	data, rerr := io.ReadAll(io.LimitReader(out, int64(s.opts.MaxOutputBytes)+1))
	if rerr == nil && len(data) > s.opts.MaxOutputBytes {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return audio.Clip{}, fmt.Errorf("%w: over %d bytes", ErrOutputTooLarge, s.opts.MaxOutputBytes)
	}
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return audio.Clip{}, ctx.Err()
		}
		return audio.Clip{}, fmt.Errorf("espeak: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	if rerr != nil {
		return audio.Clip{}, fmt.Errorf("espeak: reading output: %w", rerr)
	}
	audio.FixWAVSizes(data)
	w, err := audio.ParseWAV(data)
	if err != nil {
		return audio.Clip{}, fmt.Errorf("espeak: %w", err)
	}
	return audio.Clip{ContentType: "audio/wav", Data: data, Duration: w.Duration()}, nil
}

type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}
