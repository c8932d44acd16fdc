package dialogue_test

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/router"
)

// recordingModel answers "Ok." and records the requests the router sends
// it, after the router has filled in tier and priority.
type recordingModel struct {
	mu   sync.Mutex
	reqs []router.Request
}

func (m *recordingModel) Generate(_ context.Context, req router.Request) (*router.Response, error) {
	m.record(req)
	return &router.Response{Text: "Ok.", FinishReason: router.FinishStop}, nil
}

func (m *recordingModel) Stream(_ context.Context, req router.Request) (router.Stream, error) {
	m.record(req)
	return &okStream{}, nil
}

func (m *recordingModel) record(req router.Request) {
	m.mu.Lock()
	m.reqs = append(m.reqs, req)
	m.mu.Unlock()
}

func (m *recordingModel) last(t *testing.T) router.Request {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.reqs) == 0 {
		t.Fatal("no request reached the model")
	}
	return m.reqs[len(m.reqs)-1]
}

type okStream struct{ done bool }

func (s *okStream) Recv() (router.Delta, error) {
	if s.done {
		return router.Delta{}, io.EOF
	}
	s.done = true
	return router.Delta{Text: "Ok.", FinishReason: router.FinishStop}, nil
}

func (s *okStream) Close() error { return nil }

// TestPlayersCannotRaiseTierOrPriority: the tier and the engine priority
// of a reply come from the persona and from trusted callers; what a player
// asks for through importance and responsibility may only lower them.
func TestPlayersCannotRaiseTierOrPriority(t *testing.T) {
	m := &recordingModel{}
	var opts router.Options
	for _, name := range []string{router.Tier1, router.Tier2, router.Tier3} {
		opts.Tiers = append(opts.Tiers, router.Tier{Name: name, Replicas: []router.Replica{{Name: name + "-r", Model: m}}})
	}
	svc := newRouterService(t, opts)
	player := identity.NewContext(context.Background(), player1)
	service := identity.NewContext(context.Background(), server)
	const (
		major   = dialoguev1.Importance_IMPORTANCE_MAJOR
		elite   = dialoguev1.Importance_IMPORTANCE_ELITE
		generic = dialoguev1.Importance_IMPORTANCE_GENERIC
	)
	// guard is a generic persona (tier1, priority 1); mara an elite one
	// (tier2, priority 0).
	tests := []struct {
		name         string
		ctx          context.Context
		npc          string
		importance   dialoguev1.Importance
		resp         string
		wantTier     string
		wantPriority int
	}{
		{"player, minor persona, no asks", player, "guard", 0, "", router.Tier1, 1},
		{"player asks major for a minor persona", player, "guard", major, "", router.Tier1, 1},
		{"player asks story_critical for a minor persona", player, "guard", 0, "story_critical", router.Tier1, 1},
		{"player asks major and story_critical for a minor persona", player, "guard", major, "story_critical", router.Tier1, 1},
		{"player asks major_npc for an elite persona", player, "mara", major, "major_npc", router.Tier2, 0},
		{"player asks a studio responsibility the service does not rank", player, "mara", 0, "boss_monologue", router.Tier2, 0},
		{"player asks the persona's own level", player, "mara", elite, "quest_dialogue", router.Tier2, 0},
		{"player asks lower importance", player, "mara", generic, "", router.Tier1, 1},
		{"player asks a lower responsibility", player, "mara", 0, "greeting", router.Tier1, 0},
		{"service raises importance", service, "guard", major, "", router.Tier3, -1},
		{"service raises responsibility", service, "guard", 0, "story_critical", router.Tier3, 1},
		{"service raises both", service, "guard", major, "story_critical", router.Tier3, -1},
		{"service lowers", service, "mara", generic, "", router.Tier1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &dialoguev1.Utterance{NpcId: tt.npc, Text: "Tell me everything.", Importance: tt.importance, Responsibility: tt.resp}
			if tt.ctx == service {
				u.PlayerId = "p1"
			}
			r, err := svc.Say(tt.ctx, u)
			if err != nil {
				t.Fatal(err)
			}
			got := m.last(t)
			if got.Tier != tt.wantTier || got.Priority != tt.wantPriority {
				t.Errorf("backend saw tier %q priority %d, want tier %q priority %d", got.Tier, got.Priority, tt.wantTier, tt.wantPriority)
			}
			if r.GetCompletion().GetTier() != tt.wantTier {
				t.Errorf("Completion.tier = %q, want %q", r.GetCompletion().GetTier(), tt.wantTier)
			}
		})
	}
}
