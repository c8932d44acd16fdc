// Package langtag checks and canonicalises the subset of BCP 47 language
// tags the SDK accepts from clients: language["-"script]["-"region].
// dialogue (persona and utterance languages) and settings (the language
// key) share it, so both accept exactly the same tags.
package langtag

import "strings"

// MaxLen is the longest tag Valid accepts, in bytes.
const MaxLen = 35

// Valid accepts the subset of BCP 47 that names a language:
// language["-"script]["-"region], with a 2-3 letter language, a 4 letter
// script and a 2 letter or 3 digit region ("en", "pt-BR", "zh-Hant-TW",
// "es-419"), in any case. Variants, extensions and private-use subtags,
// which would let a client spell out words wherever the tag is written
// (a prompt, a file), are refused.
func Valid(s string) bool {
	if len(s) > MaxLen {
		return false
	}
	parts := strings.Split(s, "-")
	if len(parts) > 3 || !isAlpha(parts[0]) || len(parts[0]) < 2 || len(parts[0]) > 3 {
		return false
	}
	parts = parts[1:]
	if len(parts) > 0 && len(parts[0]) == 4 && isAlpha(parts[0]) {
		parts = parts[1:] // script
	}
	switch {
	case len(parts) == 0:
		return true
	case len(parts) > 1:
		return false
	}
	r := parts[0]
	return len(r) == 2 && isAlpha(r) || len(r) == 3 && isDigits(r)
}

// Canonical returns a tag accepted by Valid in its canonical case: "pt-br"
// becomes "pt-BR", "ZH-hant" "zh-Hant". It does not validate.
func Canonical(s string) string {
	if s == "" {
		return ""
	}
	parts := strings.Split(s, "-")
	for i, p := range parts {
		switch {
		case i == 0:
			parts[i] = strings.ToLower(p)
		case len(p) == 4:
			parts[i] = strings.ToUpper(p[:1]) + strings.ToLower(p[1:])
		default:
			parts[i] = strings.ToUpper(p)
		}
	}
	return strings.Join(parts, "-")
}

func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return s != ""
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
