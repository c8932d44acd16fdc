// Package routertest is the conformance suite for [router.Model]
// implementations. Every backend runs it:
//
//	func TestConformance(t *testing.T) {
//		routertest.TestModel(t, func(t *testing.T, line string, tokenDelay time.Duration) router.Model {
//			... // a Model that answers every request with line
//		})
//	}
//
// The suite checks what the router relies on: a stream's deltas join to
// the completion and the last one carries the finish reason; io.EOF
// follows; MaxTokens cuts the completion with FinishLength; Close is
// idempotent and may come early; cancelling the context ends a blocked
// Recv promptly with the context's error; Generate returns the same text
// as Stream; the Model is safe for concurrent use.
package routertest

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bodybroker/sdk/router"
)

// NewModel returns a Model under test that answers every request with
// line, streamed as its whitespace-separated words (each keeping the
// whitespace after it), waiting tokenDelay before each word after the
// first. The suite calls it several times; the Model and anything behind it
// must be released through t.Cleanup.
type NewModel func(t *testing.T, line string, tokenDelay time.Duration) router.Model

// Words splits line the way the suite expects a Model to stream it.
func Words(line string) []string {
	var out []string
	start := 0
	inSpace := false
	for i, c := range line {
		isSpace := c == ' ' || c == '\n' || c == '\t'
		if inSpace && !isSpace {
			out = append(out, line[start:i])
			start = i
		}
		inSpace = isSpace
	}
	if start < len(line) {
		out = append(out, line[start:])
	}
	return out
}

const line = "The old mine lies north, past the ridge."

func request() router.Request {
	return router.Request{
		Messages:       []router.Message{{Role: router.RoleSystem, Content: "You are a guard."}, {Role: router.RoleUser, Content: "Where is the mine?"}},
		Responsibility: router.QuestDialogue,
		NPC:            "guard",
	}
}

// TestModel runs the conformance suite against the Models newModel makes.
func TestModel(t *testing.T, newModel NewModel) {
	t.Run("Stream", func(t *testing.T) {
		m := newModel(t, line, 0)
		s, err := m.Stream(context.Background(), request())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var b strings.Builder
		var last router.Delta
		n := 0
		for {
			d, err := s.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("Recv %d: %v", n, err)
			}
			if last.FinishReason != "" {
				t.Fatalf("delta %+v after the finish reason", d)
			}
			b.WriteString(d.Text)
			last = d
			n++
		}
		if b.String() != line {
			t.Errorf("text %q, want %q", b.String(), line)
		}
		if last.FinishReason == "" {
			t.Error("the last delta has no finish reason")
		}
		if last.Usage != nil && last.Usage.CompletionTokens <= 0 {
			t.Errorf("usage %+v", *last.Usage)
		}
		if _, err := s.Recv(); err == nil {
			t.Error("Recv after io.EOF succeeded")
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})

	t.Run("MaxTokens", func(t *testing.T) {
		m := newModel(t, line, 0)
		req := request()
		req.MaxTokens = 3
		s, err := m.Stream(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var texts []string
		var finish router.FinishReason
		for {
			d, err := s.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			texts = append(texts, d.Text)
			finish = d.FinishReason
		}
		if want := strings.Join(Words(line)[:3], ""); strings.Join(texts, "") != want || finish != router.FinishLength {
			t.Errorf("MaxTokens 3: %q %q, want %q %q", strings.Join(texts, ""), finish, want, router.FinishLength)
		}
	})

	t.Run("Generate", func(t *testing.T) {
		m := newModel(t, line, 0)
		resp, err := m.Generate(context.Background(), request())
		if err != nil {
			t.Fatal(err)
		}
		if resp.Text != line || resp.FinishReason == "" {
			t.Errorf("Generate = %+v", resp)
		}
	})

	t.Run("EarlyClose", func(t *testing.T) {
		m := newModel(t, line, 0)
		s, err := m.Stream(context.Background(), request())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close after one delta: %v", err)
		}
		if _, err := s.Recv(); err == nil {
			t.Error("Recv after Close succeeded")
		}
	})

	t.Run("Cancel", func(t *testing.T) {
		m := newModel(t, line, time.Hour)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		s, err := m.Stream(ctx, request())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() {
			_, err := s.Recv()
			errc <- err
		}()
		time.Sleep(5 * time.Millisecond)
		cancel()
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Recv after cancel = %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Recv did not return after the context was cancelled")
		}
	})

	t.Run("CancelledBeforeStream", func(t *testing.T) {
		m := newModel(t, line, 0)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s, err := m.Stream(ctx, request())
		if err == nil {
			defer s.Close()
			_, err = s.Recv()
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled context: %v, want context.Canceled", err)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		m := newModel(t, line, 0)
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := m.Generate(context.Background(), request())
				if err == nil && resp.Text != line {
					err = errors.New("wrong text " + resp.Text)
				}
				if err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}
