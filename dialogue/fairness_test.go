package dialogue_test

import (
	"context"
	"testing"

	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/identity"
)

// Each request tells the router whose it is and how big its prompt is, so
// the router's fair rounds keep one chatty player from starving others and
// a token-window limiter can count the prompt.
func TestRequestsCarryFairnessKeyAndPromptSize(t *testing.T) {
	fc := &fakeCompleter{respond: replying("Aye.")}
	s := newService(t, fc, nil)
	ctx := identity.NewContext(context.Background(), player1)
	_, err := s.Say(ctx, &dialoguev1.Utterance{NpcId: "mara", Text: "When does the boat leave?"})
	if err != nil {
		t.Fatal(err)
	}
	reqs := fc.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d backend requests, want 1", len(reqs))
	}
	req := reqs[0]
	if req.FairnessKey != "p1" {
		t.Errorf("FairnessKey = %q, want the player p1", req.FairnessKey)
	}
	// The estimate covers the whole assembled prompt (persona, lore,
	// the line), so it is more than the player's line alone.
	var text int
	for _, m := range req.Messages {
		text += len(m.Content)
	}
	if req.PromptTokens <= 0 || req.PromptTokens > text {
		t.Errorf("PromptTokens = %d, want the prompt's estimate: positive and at most its %d bytes", req.PromptTokens, text)
	}
}
