package dialogue

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// piece is a run of reply text and whether it ends a sentence.
type piece struct {
	text        string
	sentenceEnd bool
}

// segmenter cuts streamed text at sentence boundaries so that each chunk
// that ends a sentence can say so. A boundary is a run of terminal
// punctuation (". ! ? …", optionally followed by closing quotes or brackets)
// followed by white space, or a CJK full stop, question or exclamation mark.
// Text that ends in terminal punctuation is held until the next delta shows
// whether a sentence ended (one token of delay, and only at those points);
// so is white space alone, which joins the next piece.
// A single full stop after a common abbreviation ("Mr.", "Dr.", "St.",
// "e.g.", "vs.") or an initial ("J. R. R.") does not end a sentence, so
// text-to-speech does not pause inside a name; the cost is that a sentence
// that really ends with one of them joins the next.
type segmenter struct {
	held string
	// tail is the end of the last word already emitted (up to
	// maxAbbrev bytes), so an abbreviation split across deltas is seen
	// whole; noWord when that word is longer.
	tail string
}

// abbreviations end with a full stop without ending a sentence; keys are
// lower case, without the final stop. "No.", "etc." and "a.m." are left
// out: they end sentences too often.
var abbreviations = map[string]bool{
	"mr": true, "mrs": true, "ms": true, "mx": true, "dr": true, "prof": true,
	"st": true, "mt": true, "ft": true, "jr": true, "sr": true, "fr": true, "rev": true, "hon": true,
	"capt": true, "cpt": true, "col": true, "gen": true, "lt": true, "sgt": true, "cpl": true,
	"maj": true, "adm": true, "gov": true, "messrs": true,
	"vs": true, "e.g": true, "i.e": true, "cf": true, "approx": true, "dept": true,
}

const (
	maxAbbrev = 8      // longest key in abbreviations, in bytes
	noWord    = "\x00" // a tail that matches no abbreviation
)

// isAbbrev reports whether word (the text before a full stop, back to the
// previous white space) is an abbreviation or an initial.
func isAbbrev(word string) bool {
	word = strings.TrimLeft(word, "\"'([{«“‘¿¡")
	if r, n := utf8.DecodeRuneInString(word); n == len(word) && unicode.IsUpper(r) {
		return true // an initial
	}
	return len(word) <= maxAbbrev && abbreviations[strings.ToLower(word)]
}

// wordBefore returns the non-space run that ends at text[i], continued
// into the already emitted tail when it reaches the start of text, or ""
// when it is longer than any abbreviation.
func (s *segmenter) wordBefore(text string, i int) string {
	for k := i; k > 0; {
		r, n := utf8.DecodeLastRuneInString(text[:k])
		if unicode.IsSpace(r) {
			return text[k:i]
		}
		if k -= n; i-k > maxAbbrev+4 { // room for leading quotes
			return ""
		}
	}
	return s.tail + text[:i]
}

// emitted records text that left the segmenter, for wordBefore.
func (s *segmenter) emitted(text string) {
	if text == "" {
		return
	}
	if k := strings.LastIndexFunc(text, unicode.IsSpace); k >= 0 {
		_, n := utf8.DecodeRuneInString(text[k:])
		s.tail = text[k+n:]
	} else {
		s.tail += text
	}
	if len(s.tail) > maxAbbrev+4 {
		s.tail = noWord
	}
}

func isTerminal(r rune) bool {
	switch r {
	case '.', '!', '?', '…':
		return true
	}
	return false
}

func isCJKTerminal(r rune) bool {
	switch r {
	case '。', '！', '？':
		return true
	}
	return false
}

func isCloser(r rune) bool {
	switch r {
	case '"', '\'', ')', ']', '»', '”', '’', '」', '』':
		return true
	}
	return false
}

// push adds a delta and returns the pieces that can be emitted now.
func (s *segmenter) push(delta string, out []piece) []piece {
	text := s.held + delta
	s.held = ""
	start := 0
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRuneInString(text[i:])
		switch {
		case isCJKTerminal(r):
			j := skipClosers(text, i+n)
			out = append(out, piece{text[start:j], true})
			start, i = j, j
			continue
		case isTerminal(r):
			j := i + n
			for j < len(text) {
				r2, n2 := utf8.DecodeRuneInString(text[j:])
				if !isTerminal(r2) {
					break
				}
				j += n2
			}
			single := j == i+n && r == '.'
			j = skipClosers(text, j)
			if j == len(text) {
				// Undecided until the next delta: hold from start.
				s.held = text[start:]
				s.emitted(text[:start])
				return out
			}
			if r2, _ := utf8.DecodeRuneInString(text[j:]); unicode.IsSpace(r2) &&
				!(single && j == i+n && isAbbrev(s.wordBefore(text, i))) {
				out = append(out, piece{text[start:j], true})
				start = j
			}
			i = j
			continue
		}
		i += n
	}
	if start < len(text) && strings.TrimSpace(text[start:]) == "" {
		// White space alone says nothing to a listener: carry it into
		// the next piece rather than send it on its own.
		s.held = text[start:]
		s.emitted(text[:start])
		return out
	}
	if start < len(text) {
		out = append(out, piece{text[start:], false})
	}
	s.emitted(text)
	return out
}

// flush returns whatever is held; the end of the reply ends a sentence.
func (s *segmenter) flush(out []piece) []piece {
	if s.held != "" {
		out = append(out, piece{s.held, true})
		s.held = ""
	}
	return out
}

func skipClosers(text string, j int) int {
	for j < len(text) {
		r, n := utf8.DecodeRuneInString(text[j:])
		if !isCloser(r) {
			break
		}
		j += n
	}
	return j
}
