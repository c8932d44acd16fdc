// Package routertest is the conformance suite for [router.Model]
// implementations. Every backend runs it:
//
//	func TestConformance(t *testing.T) {
//		routertest.TestModel(t, routertest.Harness{
//			Features: routertest.AllFeatures(),
//			New: func(t *testing.T, line string, tokenDelay time.Duration) router.Model {
//				... // a Model that answers every request with line
//			},
//		})
//	}
//
// The suite checks what the router relies on: a stream's deltas join to
// the completion and the last one carries the finish reason; io.EOF
// follows; MaxTokens cuts the completion with FinishLength; Close is
// idempotent and may come early; cancelling the context ends a blocked
// Recv promptly with the context's error; Generate returns the same text
// as Stream; the Model is safe for concurrent use. Where [Features] says
// so, it also checks reported token usage.
package routertest

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bodybroker/sdk/internal/wordsplit"
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
	return wordsplit.Split(line)
}

const line = "The old mine lies north, past the ridge."

func request() router.Request {
	return router.Request{
		Messages:       []router.Message{{Role: router.RoleSystem, Content: "You are a guard."}, {Role: router.RoleUser, Content: "Where is the mine?"}},
		Responsibility: router.QuestDialogue,
		NPC:            "guard",
	}
}

// Features are the optional parts of the router.Model contract a Model
// under test offers; checks that need one it lacks are skipped by name.
type Features struct {
	// Usage: the last delta of a stream carries token usage (Usage set,
	// Reported true, CompletionTokens the number of words streamed), and
	// Generate's response reports the same. Without it usage is optional,
	// but when present it must count at least one completion token.
	Usage bool
}

// AllFeatures returns Features with every feature set.
func AllFeatures() Features { return Features{Usage: true} }

// Harness describes the Models under test.
type Harness struct {
	// Features are the optional behaviours the Models offer.
	Features Features
	// New makes a Model for one check.
	New NewModel
}

// recvAll streams req from m to io.EOF and returns the deltas.
func recvAll(t *testing.T, m router.Model, req router.Request) []router.Delta {
	t.Helper()
	s, err := m.Stream(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out []router.Delta
	for {
		d, err := s.Recv()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("Recv %d: %v", len(out), err)
		}
		out = append(out, d)
	}
}

// TestModel runs the conformance suite as subtests of t: a table of named
// checks, each on Models from h.New, the optional ones driven by
// h.Features.
func TestModel(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("routertest: Harness.New is nil")
	}
	newModel := h.New
	checks := []struct {
		name string
		need func(Features) bool // nil: every Model
		fn   func(t *testing.T)
	}{
		{"Stream", nil, func(t *testing.T) {
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
		}},

		{"MaxTokens", nil, func(t *testing.T) {
			m := newModel(t, line, 0)
			req := request()
			req.MaxTokens = 3
			var texts []string
			var finish router.FinishReason
			for _, d := range recvAll(t, m, req) {
				texts = append(texts, d.Text)
				finish = d.FinishReason
			}
			if want := strings.Join(Words(line)[:3], ""); strings.Join(texts, "") != want || finish != router.FinishLength {
				t.Errorf("MaxTokens 3: %q %q, want %q %q", strings.Join(texts, ""), finish, want, router.FinishLength)
			}
		}},

		{"Generate", nil, func(t *testing.T) {
			m := newModel(t, line, 0)
			resp, err := m.Generate(context.Background(), request())
			if err != nil {
				t.Fatal(err)
			}
			if resp.Text != line || resp.FinishReason == "" {
				t.Errorf("Generate = %+v", resp)
			}
		}},

		{"Usage", func(f Features) bool { return f.Usage }, func(t *testing.T) {
			m := newModel(t, line, 0)
			var last router.Delta
			if ds := recvAll(t, m, request()); len(ds) > 0 {
				last = ds[len(ds)-1]
			}
			want := len(Words(line))
			if u := last.Usage; u == nil || !u.Reported || u.CompletionTokens != want {
				t.Errorf("usage on the last delta = %+v, want reported with %d completion tokens", u, want)
			}
			resp, err := m.Generate(context.Background(), request())
			if err != nil {
				t.Fatal(err)
			}
			if u := resp.Usage; !u.Reported || u.CompletionTokens != want {
				t.Errorf("Generate usage = %+v, want reported with %d completion tokens", u, want)
			}
		}},
		{"EarlyClose", nil, func(t *testing.T) {
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
		}},

		{"Cancel", nil, func(t *testing.T) {
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
		}},

		{"CancelledBeforeStream", nil, func(t *testing.T) {
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
		}},

		{"Concurrent", nil, func(t *testing.T) {
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
		}},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.need != nil && !c.need(h.Features) {
				t.Skip("the Model does not offer this feature (routertest.Features)")
			}
			c.fn(t)
		})
	}
}
