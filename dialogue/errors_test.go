package dialogue_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/dialogue/history"
	"github.com/bodybroker/sdk/identity"
)

// failingStore fails every call with err.
type failingStore struct{ err error }

func (s failingStore) Load(context.Context, string) (history.Conversation, error) {
	return history.Conversation{}, s.err
}
func (s failingStore) Append(context.Context, history.Conversation, history.Turn) error {
	return s.err
}
func (s failingStore) SetSummary(context.Context, string, string) error { return s.err }
func (s failingStore) Delete(context.Context, string) error             { return s.err }

// failingModerator fails every input with err.
type failingModerator struct{ err error }

func (m failingModerator) Input(context.Context, dialogue.Moderation) (string, error) {
	return "", m.err
}
func (m failingModerator) Output(_ context.Context, mod dialogue.Moderation) (string, error) {
	return mod.Text, nil
}

// TestSayErrorsWrapTheirCause: errors from Say match both the package's
// sentinel and the underlying cause with errors.Is, and map to the right
// status code.
func TestSayErrorsWrapTheirCause(t *testing.T) {
	errStore := errors.New("store: connection refused")
	errMod := errors.New("moderation: quota exceeded")
	tests := []struct {
		name     string
		edit     func(*dialogue.Options)
		ctx      context.Context
		u        *dialoguev1.Utterance
		want     []error
		wantCode codes.Code
	}{
		{
			name: "store outage",
			edit: func(o *dialogue.Options) { o.Store = failingStore{errStore} },
			// A service continuing a session without naming the player:
			// only the store knows whose it is.
			ctx:      identity.NewContext(context.Background(), server),
			u:        &dialoguev1.Utterance{NpcId: "mara", SessionId: "s1", Text: "hi"},
			want:     []error{dialogue.ErrUnavailable, errStore},
			wantCode: codes.Unavailable,
		},
		{
			name:     "moderator failure",
			edit:     func(o *dialogue.Options) { o.Moderator = failingModerator{errMod} },
			ctx:      identity.NewContext(context.Background(), player1),
			u:        &dialoguev1.Utterance{NpcId: "mara", Text: "hi"},
			want:     []error{dialogue.ErrUnavailable, errMod},
			wantCode: codes.Unavailable,
		},
		{
			name: "prompt too large",
			edit: func(o *dialogue.Options) {
				o.CountTokens = func(s string) int {
					if strings.Contains(s, "HUGE") {
						return 1 << 20
					}
					return dialogue.EstimateTokens(s)
				}
			},
			ctx:      identity.NewContext(context.Background(), player1),
			u:        &dialoguev1.Utterance{NpcId: "mara", Text: "a HUGE question"},
			want:     []error{dialogue.ErrPromptTooLarge, dialogue.ErrTooLarge},
			wantCode: codes.InvalidArgument,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := &fakeCompleter{respond: replying("Ok.")}
			s := newService(t, fc, tt.edit)
			_, err := s.Say(tt.ctx, tt.u)
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Errorf("Say = %v; errors.Is(err, %q) = false, want true", err, want)
				}
			}
			if errors.Is(err, dialogue.ErrClosed) {
				t.Errorf("Say = %v matches ErrClosed; the service is not closed", err)
			}
			if got := dialogue.Code(err); got != tt.wantCode {
				t.Errorf("Code(%v) = %v, want %v", err, got, tt.wantCode)
			}
			if n := len(fc.requests()); n != 0 {
				t.Errorf("%d requests reached the completer, want 0", n)
			}
		})
	}
}
