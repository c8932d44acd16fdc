package dialogue_test

import (
	"context"
	"strings"
	"testing"

	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/identity"
)

// The server's clock, not the client, says what time it is in the scene.
func TestTimeOfDayHook(t *testing.T) {
	fc := &fakeCompleter{respond: replying("Evening.")}
	var regions []string
	s := newService(t, fc, func(o *dialogue.Options) {
		o.TimeOfDay = func(_ context.Context, region string) (string, bool) {
			regions = append(regions, region)
			return "dusk (18:40, day 3)", region == "greywater"
		}
	})
	ctx := identity.NewContext(context.Background(), player1)
	scene := &dialoguev1.GameContext{Region: "greywater", TimeOfDay: "noon"}
	if _, err := s.Say(ctx, &dialoguev1.Utterance{NpcId: "mara", Text: "hi", Context: scene}); err != nil {
		t.Fatal(err)
	}
	// A region the hook does not know keeps the client's value; so does
	// a request without a context.
	if _, err := s.Say(ctx, &dialoguev1.Utterance{NpcId: "mara", Text: "hi", Context: &dialoguev1.GameContext{TimeOfDay: "noon"}}); err != nil {
		t.Fatal(err)
	}
	reqs := fc.requests()
	last := func(i int) string { m := reqs[i].Messages; return m[len(m)-1].Content }
	if got := last(0); !strings.Contains(got, "Time of day: dusk (18:40, day 3)") || strings.Contains(got, "noon") {
		t.Errorf("prompt with the hook:\n%s", got)
	}
	if got := last(1); !strings.Contains(got, "Time of day: noon") {
		t.Errorf("prompt for an unknown region:\n%s", got)
	}
	if scene.GetTimeOfDay() != "noon" {
		t.Errorf("the hook modified the request: %q", scene.GetTimeOfDay())
	}
	if len(regions) != 2 || regions[0] != "greywater" || regions[1] != "" {
		t.Errorf("hook called with regions %q", regions)
	}
}
