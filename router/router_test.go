package router_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/scripted"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func mustScripted(t testing.TB, o scripted.Options) *scripted.Model {
	t.Helper()
	m, err := scripted.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// mustRouter returns a router configured by opts, logging nowhere unless
// opts sets a Logger, and closes it when the test ends.
func mustRouter(t testing.TB, opts router.Options) *router.Router {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r, err := router.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestSimpleStream(t *testing.T) {
	m := mustScripted(t, scripted.Options{Lines: map[router.Responsibility][]string{router.Greeting: {"Hello there, friend."}}})
	r := mustRouter(t, router.Options{Tiers: []router.Tier{{Name: router.Tier1, Replicas: []router.Replica{{Name: "a", Model: m}}}}})
	s, err := r.Stream(context.Background(), router.Request{Responsibility: router.Greeting})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var got []string
	for {
		d, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, d.Text)
	}
	if diff := cmp.Diff([]string{"Hello ", "there, ", "friend."}, got); diff != "" {
		t.Errorf("deltas (-want +got):\n%s", diff)
	}
	rc := s.Receipt()
	if rc.Tier != router.Tier1 || rc.Replica != "a" || rc.Attempts != 1 {
		t.Errorf("receipt = %+v", rc)
	}
	if diff := cmp.Diff([]router.Reason{router.ReasonResponsibility, router.ReasonLeastLoaded}, rc.Reasons); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("Recv after end = %v, want io.EOF", err)
	}
	st, _ := r.Stats().Tier(router.Tier1)
	if st.Requests != 1 || st.Successes != 1 || st.InFlight != 0 || st.TokensOut != 3 {
		t.Errorf("stats = %+v", st)
	}
}

func TestGenerate(t *testing.T) {
	m := mustScripted(t, scripted.Options{Default: []string{"One two three."}})
	r := mustRouter(t, router.Options{Tiers: []router.Tier{{Name: "only", Replicas: []router.Replica{{Name: "a", Model: m}}}}})
	res, err := r.Generate(context.Background(), router.Request{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Text != "One two three." || res.FinishReason != router.FinishScripted || res.Receipt.Tier != "only" {
		t.Errorf("result = %+v", res)
	}
}

// TestResultUsageReported: Result.Usage says whether the backend reported
// it.
func TestResultUsageReported(t *testing.T) {
	for _, tt := range []struct {
		name  string
		model router.Model
		want  router.Usage
	}{
		{"reported", instant{tokens: []string{"a", "b"}}, router.Usage{PromptTokens: 3, CompletionTokens: 2, Reported: true}},
		{"absent", &paced{Tokens: []string{"a", "b"}}, router.Usage{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRouter(t, router.Options{Tiers: []router.Tier{{Name: "t", Replicas: []router.Replica{{Name: "a", Model: tt.model}}}}})
			res, err := r.Generate(context.Background(), router.Request{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Usage != tt.want {
				t.Errorf("usage %+v, want %+v", res.Usage, tt.want)
			}
			st, _ := r.Stats().Tier("t")
			if st.TokensOut != 2 {
				t.Errorf("stats: %d tokens out, want 2", st.TokensOut)
			}
		})
	}
}
