// Package wordsplit splits a line into the pieces a stand-in model streams:
// words that keep their following whitespace, so joining the pieces gives
// the line back. router/scripted, batching/sim and router/routertest share
// it, so a suite's expectations and the stand-ins' streams always agree.
package wordsplit

// Split returns line's words, each with the spaces, tabs and newlines that
// follow it; a leading run of whitespace is a piece of its own.
func Split(line string) []string {
	var out []string
	start := 0
	inSpace := false
	for i, c := range line {
		isSpace := c == ' ' || c == '\n' || c == '\t'
		if inSpace && !isSpace {
			out = append(out, line[start:i])
			start = i
		}
		inSpace = isSpace
	}
	if start < len(line) {
		out = append(out, line[start:])
	}
	return out
}
