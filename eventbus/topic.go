package eventbus

import (
	"strings"
	"unicode/utf8"
)

// MaxTopicLen is the longest topic or pattern accepted, in bytes.
const MaxTopicLen = 255

// ValidateTopic reports whether topic is a valid concrete topic: one or more
// non-empty segments separated by '.', at most MaxTopicLen bytes of valid
// UTF-8, with no whitespace, control characters or wildcards ('*', '>').
// The error is a *TopicError.
func ValidateTopic(topic string) error {
	if reason := checkSubject(topic, false); reason != "" {
		return &TopicError{Topic: topic, Reason: reason}
	}
	return nil
}

// ValidatePattern reports whether pattern is a valid subscription pattern:
// like a topic, except that a whole segment may be '*' (exactly one segment)
// and the last segment may be '>' (one or more remaining segments). The error
// is a *TopicError that matches ErrInvalidPattern.
func ValidatePattern(pattern string) error {
	if reason := checkSubject(pattern, true); reason != "" {
		return &TopicError{Topic: pattern, Reason: reason, Pattern: true}
	}
	return nil
}

func checkSubject(s string, pattern bool) string {
	if s == "" {
		return "empty"
	}
	if len(s) > MaxTopicLen {
		return "longer than 255 bytes"
	}
	segStart := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			c := s[i]
			if c <= ' ' || c == 0x7f {
				return "contains whitespace or a control character"
			}
			if c >= utf8.RuneSelf {
				continue
			}
			if c == '*' || c == '>' {
				if !pattern {
					return "contains a wildcard ('*' or '>'); wildcards are for patterns"
				}
			}
			continue
		}
		seg := s[segStart:i]
		if seg == "" {
			return "has an empty segment"
		}
		if pattern {
			if seg == ">" && i != len(s) {
				return "'>' must be the last segment"
			}
			if seg != "*" && seg != ">" && strings.ContainsAny(seg, "*>") {
				return "a wildcard must be a whole segment"
			}
		}
		segStart = i + 1
	}
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	return ""
}

// pattern is a parsed subscription pattern.
type pattern struct {
	raw      string
	segs     []string
	literal  bool // no wildcards: matches exactly raw
	tailWild bool // ends in '>'
}

func parsePattern(p string) (*pattern, error) {
	if err := ValidatePattern(p); err != nil {
		return nil, err
	}
	pt := &pattern{raw: p, segs: strings.Split(p, ".")}
	pt.literal = !strings.ContainsAny(p, "*>")
	pt.tailWild = pt.segs[len(pt.segs)-1] == ">"
	return pt, nil
}

// Match reports whether topic matches the pattern p ('*' one segment, '>'
// one or more trailing segments). Invalid patterns match nothing.
func Match(p, topic string) bool {
	pt, err := parsePattern(p)
	if err != nil {
		return false
	}
	return pt.match(topic)
}

func (p *pattern) match(topic string) bool {
	if p.literal {
		return topic == p.raw
	}
	rest, more := topic, true // more: segments remain in rest
	for _, seg := range p.segs {
		if seg == ">" {
			return more
		}
		if !more {
			return false
		}
		var cur string
		if j := strings.IndexByte(rest, '.'); j >= 0 {
			cur, rest = rest[:j], rest[j+1:]
		} else {
			cur, rest, more = rest, "", false
		}
		if cur == "" || (seg != "*" && seg != cur) {
			return false
		}
	}
	return !more
}

// Pattern is a parsed, validated subscription pattern, for transports that
// match topics themselves.
type Pattern struct{ p *pattern }

// ParsePattern validates and parses a pattern.
func ParsePattern(s string) (Pattern, error) {
	p, err := parsePattern(s)
	if err != nil {
		return Pattern{}, err
	}
	return Pattern{p}, nil
}

// Match reports whether topic matches the pattern.
func (p Pattern) Match(topic string) bool { return p.p != nil && p.p.match(topic) }

// IsLiteral reports whether the pattern has no wildcards (matches one topic).
func (p Pattern) IsLiteral() bool { return p.p != nil && p.p.literal }

// String returns the pattern as written.
func (p Pattern) String() string {
	if p.p == nil {
		return ""
	}
	return p.p.raw
}

// Segments returns the pattern's dot-separated segments.
func (p Pattern) Segments() []string {
	if p.p == nil {
		return nil
	}
	return append([]string(nil), p.p.segs...)
}
