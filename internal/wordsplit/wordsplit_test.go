package wordsplit

import (
	"slices"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, tt := range []struct {
		line string
		want []string
	}{
		{"", nil},
		{"Aye.", []string{"Aye."}},
		{"Well met, traveller.", []string{"Well ", "met, ", "traveller."}},
		{"  lead\tand\n\nend ", []string{"  ", "lead\t", "and\n\n", "end "}},
	} {
		got := Split(tt.line)
		if !slices.Equal(got, tt.want) {
			t.Errorf("Split(%q) = %q, want %q", tt.line, got, tt.want)
		}
		if strings.Join(got, "") != tt.line {
			t.Errorf("Split(%q) does not join back to the line", tt.line)
		}
	}
}
