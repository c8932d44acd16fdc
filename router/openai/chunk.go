package openai

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// wireChoice is one choice of a streamed chunk: a chat delta or a text
// completion piece. Null values decode as empty strings.
type wireChoice struct {
	Delta struct {
		Content string `json:"content"`
	} `json:"delta"`
	Text         string `json:"text"`
	FinishReason string `json:"finish_reason"`
}

// wireChunk is one streamed chunk, or an error payload ({"error": {...}}
// or {"object": "error", ...}).
type wireChunk struct {
	Choices []wireChoice `json:"choices"`
	Usage   *wireUsage   `json:"usage"`
	Error   *errorBody   `json:"error"`
	Object  string       `json:"object"`
	Message string       `json:"message"`
	Type    string       `json:"type"`
}

// decodeChunk decodes data into c. Chunks of the usual shape take a fast
// path that decodes exactly what encoding/json would (FuzzChunkDecoders
// checks it); anything else, error payloads included, goes through
// encoding/json.
func decodeChunk(data []byte, c *wireChunk) error {
	choices := c.Choices[:0]
	*c = wireChunk{}
	if fastChunk(data, c, choices) {
		return nil
	}
	*c = wireChunk{}
	return json.Unmarshal(data, c)
}

// fastChunk parses the common chunk shape. It reports false, leaving c in
// an unspecified state, whenever the input is not plainly valid or holds
// something the fast path does not handle (escapes in strings, error
// payloads, keys that differ from the known ones only in case, duplicate
// known keys, non-integer usage counts, deep nesting).
func fastChunk(data []byte, c *wireChunk, choices []wireChoice) bool {
	p := parser{b: data}
	if !p.objectStart() {
		return false
	}
	var seen uint8
	const (
		seenChoices = 1 << iota
		seenUsage
		seenObject
	)
	for more, ok := p.firstKey(); more; more, ok = p.nextKey() {
		if !ok {
			return false
		}
		key, ok := p.key()
		if !ok {
			return false
		}
		switch string(key) {
		case "choices":
			if seen&seenChoices != 0 {
				return false
			}
			seen |= seenChoices
			cs, ok := p.choices(choices)
			if !ok {
				return false
			}
			c.Choices = cs
		case "usage":
			if seen&seenUsage != 0 {
				return false
			}
			seen |= seenUsage
			u, ok := p.usage()
			if !ok {
				return false
			}
			c.Usage = u
		case "object":
			if seen&seenObject != 0 {
				return false
			}
			seen |= seenObject
			s, ok := p.plainString()
			if !ok || s == "error" {
				return false
			}
			c.Object = s
		default:
			if foldsTo(key, "choices", "usage", "object", "error", "message", "type") {
				return false
			}
			if !p.skip(0) {
				return false
			}
		}
	}
	p.ws()
	return p.i == len(p.b)
}

// foldsTo reports whether key equals one of names ignoring case, as
// encoding/json matches field names.
func foldsTo(key []byte, names ...string) bool {
	for _, n := range names {
		if bytes.EqualFold(key, []byte(n)) {
			return true
		}
	}
	return false
}

// parser is a strict, minimal JSON reader over one chunk.
type parser struct {
	b []byte
	i int
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) peek() byte {
	p.ws()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *parser) eat(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) objectStart() bool { return p.eat('{') }

// firstKey reports whether the object just opened has a first member.
func (p *parser) firstKey() (more, ok bool) {
	if p.eat('}') {
		return false, true
	}
	return true, true
}

// nextKey consumes "," (another member follows) or "}" (the end).
func (p *parser) nextKey() (more, ok bool) {
	switch p.peek() {
	case ',':
		p.i++
		return true, true
	case '}':
		p.i++
		return false, true
	}
	return true, false
}

// key reads a member name and its colon.
func (p *parser) key() ([]byte, bool) {
	k, ok := p.rawPlain()
	if !ok || !p.eat(':') {
		return nil, false
	}
	return k, true
}

// rawPlain reads a string without escapes or control characters and with
// valid UTF-8, returning its bytes.
func (p *parser) rawPlain() ([]byte, bool) {
	if p.peek() != '"' {
		return nil, false
	}
	start := p.i + 1
	for j := start; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			s := p.b[start:j]
			if !utf8.Valid(s) {
				return nil, false
			}
			p.i = j + 1
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// plainString reads a string or null (as ""). It handles the escapes
// \" \\ \/ \b \f \n \r \t and \u outside the surrogate range; other
// escapes, control characters and invalid UTF-8 make it fail.
func (p *parser) plainString() (string, bool) {
	if p.literal("null") {
		return "", true
	}
	if p.peek() != '"' {
		return "", false
	}
	start := p.i + 1
	j := start
	for ; j < len(p.b); j++ {
		c := p.b[j]
		if c == '"' {
			s := p.b[start:j]
			if !utf8.Valid(s) {
				return "", false
			}
			p.i = j + 1
			return string(s), true
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", false
		}
	}
	// Escapes: decode into a new buffer.
	out := make([]byte, 0, j-start+16)
	out = append(out, p.b[start:j]...)
	for ; j < len(p.b); j++ {
		c := p.b[j]
		switch {
		case c == '"':
			if !utf8.Valid(out) {
				return "", false
			}
			p.i = j + 1
			return string(out), true
		case c < 0x20:
			return "", false
		case c != '\\':
			out = append(out, c)
			continue
		}
		j++
		if j >= len(p.b) {
			return "", false
		}
		switch e := p.b[j]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if j+4 >= len(p.b) {
				return "", false
			}
			var r rune
			for _, h := range p.b[j+1 : j+5] {
				v, ok := hexVal(h)
				if !ok {
					return "", false
				}
				r = r<<4 | rune(v)
			}
			if r >= 0xD800 && r <= 0xDFFF {
				return "", false // surrogates: leave them to encoding/json
			}
			out = utf8.AppendRune(out, r)
			j += 4
		default:
			return "", false
		}
	}
	return "", false
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func (p *parser) literal(lit string) bool {
	if p.peek() == lit[0] && bytes.HasPrefix(p.b[p.i:], []byte(lit)) {
		p.i += len(lit)
		return true
	}
	return false
}

// choices reads the choices array (or null), reusing buf.
func (p *parser) choices(buf []wireChoice) ([]wireChoice, bool) {
	if p.literal("null") {
		return nil, true
	}
	if !p.eat('[') {
		return nil, false
	}
	out := buf[:0]
	if p.eat(']') {
		return out, true
	}
	for {
		var ch wireChoice
		if !p.choice(&ch) {
			return nil, false
		}
		out = append(out, ch)
		switch p.peek() {
		case ',':
			p.i++
		case ']':
			p.i++
			return out, true
		default:
			return nil, false
		}
	}
}

func (p *parser) choice(ch *wireChoice) bool {
	if !p.objectStart() {
		return false
	}
	var seen uint8
	for more, ok := p.firstKey(); more; more, ok = p.nextKey() {
		if !ok {
			return false
		}
		key, ok := p.key()
		if !ok {
			return false
		}
		var bit uint8
		switch string(key) {
		case "delta":
			bit = 1
			if !p.delta(ch) {
				return false
			}
		case "text":
			bit = 2
			if ch.Text, ok = p.plainString(); !ok {
				return false
			}
		case "finish_reason":
			bit = 4
			if ch.FinishReason, ok = p.plainString(); !ok {
				return false
			}
		default:
			if foldsTo(key, "delta", "text", "finish_reason") || !p.skip(1) {
				return false
			}
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
	}
	return true
}

func (p *parser) delta(ch *wireChoice) bool {
	if p.literal("null") {
		return true
	}
	if !p.objectStart() {
		return false
	}
	seen := false
	for more, ok := p.firstKey(); more; more, ok = p.nextKey() {
		if !ok {
			return false
		}
		key, ok := p.key()
		if !ok {
			return false
		}
		switch string(key) {
		case "content":
			if seen {
				return false
			}
			seen = true
			if ch.Delta.Content, ok = p.plainString(); !ok {
				return false
			}
		default:
			if foldsTo(key, "content") || !p.skip(2) {
				return false
			}
		}
	}
	return true
}

// usage reads the usage object (or null).
func (p *parser) usage() (*wireUsage, bool) {
	if p.literal("null") {
		return nil, true
	}
	if !p.objectStart() {
		return nil, false
	}
	u := &wireUsage{}
	var seen uint8
	for more, ok := p.firstKey(); more; more, ok = p.nextKey() {
		if !ok {
			return nil, false
		}
		key, ok := p.key()
		if !ok {
			return nil, false
		}
		var bit uint8
		switch string(key) {
		case "prompt_tokens":
			bit = 1
			if u.PromptTokens, ok = p.uint(); !ok {
				return nil, false
			}
		case "completion_tokens":
			bit = 2
			if u.CompletionTokens, ok = p.uint(); !ok {
				return nil, false
			}
		default:
			if foldsTo(key, "prompt_tokens", "completion_tokens") || !p.skip(1) {
				return nil, false
			}
		}
		if seen&bit != 0 {
			return nil, false
		}
		seen |= bit
	}
	return u, true
}

// uint reads a non-negative integer of at most 15 digits (null is not
// accepted here: encoding/json leaves the field unchanged, which the fast
// path does not model).
func (p *parser) uint() (int, bool) {
	p.ws()
	start, n := p.i, 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		n = n*10 + int(p.b[p.i]-'0')
		p.i++
	}
	digits := p.i - start
	if digits == 0 || digits > 15 || (digits > 1 && p.b[start] == '0') {
		return 0, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	return n, true
}

// skip validates and skips one value of any kind.
func (p *parser) skip(depth int) bool {
	if depth > 32 {
		return false
	}
	switch p.peek() {
	case '"':
		return p.skipString()
	case '{':
		p.i++
		for more, ok := p.firstKey(); more; more, ok = p.nextKey() {
			if !ok || !p.skipString() || !p.eat(':') || !p.skip(depth+1) {
				return false
			}
		}
		return true
	case '[':
		p.i++
		if p.eat(']') {
			return true
		}
		for {
			if !p.skip(depth + 1) {
				return false
			}
			switch p.peek() {
			case ',':
				p.i++
			case ']':
				p.i++
				return true
			default:
				return false
			}
		}
	case 't':
		return p.literal("true")
	case 'f':
		return p.literal("false")
	case 'n':
		return p.literal("null")
	default:
		return p.skipNumber()
	}
}

// skipString skips a string, validating its escapes.
func (p *parser) skipString() bool {
	if p.peek() != '"' {
		return false
	}
	for j := p.i + 1; j < len(p.b); j++ {
		switch c := p.b[j]; {
		case c == '"':
			p.i = j + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			j++
			if j >= len(p.b) {
				return false
			}
			switch p.b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(p.b) {
					return false
				}
				for _, h := range p.b[j+1 : j+5] {
					if !isHex(h) {
						return false
					}
				}
				j += 4
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// skipNumber skips a JSON number.
func (p *parser) skipNumber() bool {
	b, i := p.b, p.i
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	p.i = i
	return true
}
