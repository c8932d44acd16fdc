package worldtime

import (
	"context"
	"strconv"
)

// DialogueTimeOfDay returns a hook for dialogue.Options.TimeOfDay (which
// dialogue declares as a func so that it need not import this package):
// it finds the clock for a dialogue request's region with clockFor (nil:
// none, and the client's value stands) and describes its time as
// "dusk (18:40, day 3)".
func DialogueTimeOfDay(clockFor func(region string) *Clock) func(ctx context.Context, region string) (string, bool) {
	return func(_ context.Context, region string) (string, bool) {
		c := clockFor(region)
		if c == nil {
			return "", false
		}
		return c.Now().Describe(), true
	}
}

// Describe returns the time as a short phrase for prompts and logs:
// "dusk (18:40, day 3)".
func (t Time) Describe() string {
	b := make([]byte, 0, 32)
	b = append(b, t.Phase...)
	b = append(b, " ("...)
	b = append(b, t.Clock()...)
	b = append(b, ", day "...)
	b = strconv.AppendInt(b, int64(t.Day), 10)
	b = append(b, ')')
	return string(b)
}
