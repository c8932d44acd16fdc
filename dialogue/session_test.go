package dialogue_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/dialogue/history"
	"github.com/bodybroker/sdk/identity"
)

// TestSessionsAreServerIssued: a session ID the service never issued is
// NotFound, for players and services alike, and creates nothing; an empty
// one starts a session under an ID the service chooses, which can then be
// continued.
func TestSessionsAreServerIssued(t *testing.T) {
	store := newMemoryStore(t)
	fc := &fakeCompleter{respond: replying("Yes?")}
	s := newService(t, fc, func(o *dialogue.Options) { o.Store = store })
	p1 := identity.NewContext(context.Background(), player1)
	svc := identity.NewContext(context.Background(), server)

	for _, tt := range []struct {
		name string
		ctx  context.Context
		u    *dialoguev1.Utterance
	}{
		{"player", p1, &dialoguev1.Utterance{NpcId: "mara", SessionId: "chosen-by-client", Text: "hi"}},
		{"service for a player", svc, &dialoguev1.Utterance{NpcId: "mara", SessionId: "chosen-by-server", Text: "hi", PlayerId: "p1"}},
		{"service", svc, &dialoguev1.Utterance{NpcId: "mara", SessionId: "chosen-by-service", Text: "hi"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Say(tt.ctx, tt.u)
			if !errors.Is(err, dialogue.ErrSessionNotFound) {
				t.Fatalf("Say with an unknown session = %v, want ErrSessionNotFound", err)
			}
			if got := dialogue.Code(err); got != codes.NotFound {
				t.Errorf("Code(%v) = %v, want NotFound", err, got)
			}
			if _, err := store.Load(context.Background(), tt.u.GetSessionId()); !errors.Is(err, history.ErrNotFound) {
				t.Errorf("store.Load(%q) = %v, want ErrNotFound: the unknown ID must not create a session", tt.u.GetSessionId(), err)
			}
		})
	}
	if n := len(fc.requests()); n != 0 {
		t.Errorf("%d requests reached the completer for unknown sessions, want 0", n)
	}
	if n := store.Len(); n != 0 {
		t.Errorf("store holds %d conversations, want 0", n)
	}

	r, err := s.Say(p1, &dialoguev1.Utterance{NpcId: "mara", Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	sess := r.GetCompletion().GetSessionId()
	if sess == "" {
		t.Fatal("no session issued")
	}
	r2, err := s.Say(p1, &dialoguev1.Utterance{NpcId: "mara", SessionId: sess, Text: "again"})
	if err != nil || r2.GetCompletion().GetSessionId() != sess {
		t.Fatalf("continuing the issued session %q = %v, %v", sess, r2.GetCompletion().GetSessionId(), err)
	}
}

// silencingModerator passes input and drops every output sentence.
type silencingModerator struct{}

func (silencingModerator) Input(_ context.Context, m dialogue.Moderation) (string, error) {
	return m.Text, nil
}
func (silencingModerator) Output(context.Context, dialogue.Moderation) (string, error) {
	return "", nil
}

// TestIssuedSessionSurvivesEmptyReply: a new session's ID is usable even
// when its first reply has no text (here, output moderation dropped it).
func TestIssuedSessionSurvivesEmptyReply(t *testing.T) {
	fc := &fakeCompleter{respond: replying("Something unspeakable.")}
	s := newService(t, fc, func(o *dialogue.Options) { o.Moderator = silencingModerator{} })
	p1 := identity.NewContext(context.Background(), player1)
	r, err := s.Say(p1, &dialoguev1.Utterance{NpcId: "mara", Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if r.GetText() != "" {
		t.Fatalf("text = %q, want none", r.GetText())
	}
	sess := r.GetCompletion().GetSessionId()
	if _, err := s.Say(p1, &dialoguev1.Utterance{NpcId: "mara", SessionId: sess, Text: "again"}); err != nil {
		t.Errorf("continuing the issued session after an empty reply = %v", err)
	}
}

// flakyLoadStore is a MemoryStore whose Load fails while failLoad is set.
type flakyLoadStore struct {
	*history.MemoryStore
	failLoad atomic.Bool
}

var errStoreDown = errors.New("store: connection reset")

func (s *flakyLoadStore) Load(ctx context.Context, id string) (history.Conversation, error) {
	if s.failLoad.Load() {
		return history.Conversation{}, errStoreDown
	}
	return s.MemoryStore.Load(ctx, id)
}

// TestStoreOutageCreatesNoSession: while the store cannot say whether a
// session exists, the player is answered without history, but the turn is
// not saved under the ID the client sent: an outage must not let a client
// create a session under an ID of its choosing.
func TestStoreOutageCreatesNoSession(t *testing.T) {
	store := &flakyLoadStore{MemoryStore: newMemoryStore(t)}
	store.failLoad.Store(true)
	fc := &fakeCompleter{respond: replying("Hm.")}
	s := newService(t, fc, func(o *dialogue.Options) { o.Store = store })
	p1 := identity.NewContext(context.Background(), player1)
	r, err := s.Say(p1, &dialoguev1.Utterance{NpcId: "mara", SessionId: "chosen-by-client", Text: "hi"})
	if err != nil {
		t.Fatalf("Say during a store outage = %v, want a reply without history", err)
	}
	if r.GetText() != "Hm." {
		t.Errorf("text = %q", r.GetText())
	}
	store.failLoad.Store(false)
	if _, err := store.Load(context.Background(), "chosen-by-client"); !errors.Is(err, history.ErrNotFound) {
		t.Errorf("store.Load(chosen-by-client) = %v, want ErrNotFound", err)
	}
	if _, err := s.Say(p1, &dialoguev1.Utterance{NpcId: "mara", SessionId: "chosen-by-client", Text: "hi"}); !errors.Is(err, dialogue.ErrSessionNotFound) {
		t.Errorf("Say after the outage = %v, want ErrSessionNotFound", err)
	}
}
