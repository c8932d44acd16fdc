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
// Abbreviations such as "Mr." may be marked as ends; TTS tolerates that.
type segmenter struct {
	held string
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
			j = skipClosers(text, j)
			if j == len(text) {
				// Undecided until the next delta: hold from start.
				s.held = text[start:]
				return out
			}
			if r2, _ := utf8.DecodeRuneInString(text[j:]); unicode.IsSpace(r2) {
				out = append(out, piece{text[start:j], true})
				start = j
			}
			i = j
			continue
		}
		i += n
	}
	if start < len(text) {
		if strings.TrimSpace(text[start:]) == "" {
			// White space alone says nothing to a listener: carry it
			// into the next piece rather than send it on its own.
			s.held = text[start:]
			return out
		}
		out = append(out, piece{text[start:], false})
	}
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
