package eventbus_test

import (
	"strings"
	"testing"

	"github.com/bodybroker/sdk/eventbus"
)

func FuzzParseID(f *testing.F) {
	f.Add(eventbus.NewID().String())
	f.Add("01ARZ3NDEKTSV4RRFFQ69G5FAV")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := eventbus.ParseID(s)
		if err != nil {
			return
		}
		// Canonical form round-trips (Crockford aliases and lower case
		// normalise to it).
		back, err := eventbus.ParseID(id.String())
		if err != nil || back != id {
			t.Fatalf("ParseID(%q) = %s; reparse = %s, %v", s, id, back, err)
		}
		if !strings.EqualFold(id.String(), s) && len(s) == 26 && !strings.ContainsAny(strings.ToUpper(s), "OIL") {
			t.Fatalf("ParseID(%q).String() = %s", s, id)
		}
	})
}

func FuzzTopicsAndPatterns(f *testing.F) {
	for _, s := range []string{"a.b", "world.time.*", "npc.>", "a..b", "*", ">", "a.>.b", "ü.ß", " a"} {
		f.Add(s, "a.b")
	}
	f.Fuzz(func(t *testing.T, pattern, topic string) {
		perr := eventbus.ValidatePattern(pattern)
		terr := eventbus.ValidateTopic(topic)
		m := eventbus.Match(pattern, topic)
		if perr != nil && m {
			t.Fatalf("invalid pattern %q matched %q", pattern, topic)
		}
		if terr == nil && eventbus.ValidatePattern(topic) != nil {
			t.Fatalf("valid topic %q is not a valid pattern", topic)
		}
		if terr == nil && !eventbus.Match(topic, topic) {
			t.Fatalf("topic %q does not match itself", topic)
		}
		if terr == nil && !eventbus.Match(">", topic) {
			t.Fatalf("'>' does not match %q", topic)
		}
		if terr == nil && perr == nil && m {
			// A match has compatible segment counts.
			ps, ts := strings.Split(pattern, "."), strings.Split(topic, ".")
			if ps[len(ps)-1] != ">" && len(ps) != len(ts) {
				t.Fatalf("%q matched %q with different segment counts", pattern, topic)
			}
		}
	})
}
