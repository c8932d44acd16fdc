package langtag

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for _, s := range []string{"en", "EN", "pt-BR", "pt-br", "zh-Hant-TW", "es-419", "haw", "sr-Latn"} {
		if !Valid(s) {
			t.Errorf("Valid(%q) = false, want true", s)
		}
	}
	for _, s := range []string{"", "e", "engl", "en-", "-en", "en-US-x-pirate", "en-1", "en-12", "zh-Hant-TW-x",
		"de-CH-1996", "en_US", "en US", "e1", strings.Repeat("a", MaxLen+1)} {
		if Valid(s) {
			t.Errorf("Valid(%q) = true, want false", s)
		}
	}
}

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"": "", "EN": "en", "pt-br": "pt-BR", "ZH-hant-tw": "zh-Hant-TW", "es-419": "es-419",
	} {
		if got := Canonical(in); got != want {
			t.Errorf("Canonical(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzValid(f *testing.F) {
	f.Add("pt-BR")
	f.Add("zh-Hant-TW")
	f.Fuzz(func(t *testing.T, s string) {
		if Valid(s) && !Valid(Canonical(s)) {
			t.Errorf("Canonical(%q) = %q is not valid", s, Canonical(s))
		}
	})
}
