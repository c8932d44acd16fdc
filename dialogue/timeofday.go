package dialogue

import (
	"context"

	"google.golang.org/protobuf/proto"

	"github.com/bodybroker/sdk/dialogue/dialoguev1"
)

// scene returns the game context the prompt shows: the client's, with the
// time of day from Options.TimeOfDay when that hook answers. The request's
// own message is never modified.
func (s *Service) scene(ctx context.Context, c *dialoguev1.GameContext) *dialoguev1.GameContext {
	if s.opts.TimeOfDay == nil {
		return c
	}
	tod, ok := s.opts.TimeOfDay(ctx, c.GetRegion())
	if !ok {
		return c
	}
	out := &dialoguev1.GameContext{}
	if c != nil {
		out = proto.Clone(c).(*dialoguev1.GameContext)
	}
	out.TimeOfDay = truncateUTF8(tod, maxContextField)
	return out
}
