package gateway

import (
	"strconv"
	"unicode/utf8"

	"github.com/bodybroker/sdk/router"
)

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does; so do U+2028 and U+2029 get escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// finishReason maps the router's finish reasons to OpenAI's: a scripted
// line ended normally.
func finishReason(f router.FinishReason) string {
	switch f {
	case router.FinishLength:
		return "length"
	case "", router.FinishStop, router.FinishScripted:
		return "stop"
	}
	return string(f)
}

// response is what every chunk and body of one response shares.
type response struct {
	id      string
	created int64
	model   string
	chat    bool
}

func (r *response) appendHead(b []byte, object string) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, r.id)
	b = append(b, `,"object":"`...)
	b = append(b, object...)
	b = append(b, `","created":`...)
	b = strconv.AppendInt(b, r.created, 10)
	b = append(b, `,"model":`...)
	b = appendString(b, r.model)
	return b
}

func appendUsage(b []byte, u router.Usage) []byte {
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(u.PromptTokens), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(u.CompletionTokens), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(u.PromptTokens+u.CompletionTokens), 10)
	return append(b, '}')
}

// appendChunk appends one SSE event carrying text and, when finish is set,
// the finish reason. first adds the assistant role to a chat delta.
func (r *response) appendChunk(b []byte, text string, finish router.FinishReason, first bool) []byte {
	b = append(b, "data: "...)
	if r.chat {
		b = r.appendHead(b, "chat.completion.chunk")
		b = append(b, `,"choices":[{"index":0,"delta":{`...)
		if first {
			b = append(b, `"role":"assistant"`...)
		}
		if text != "" || finish == "" {
			if first {
				b = append(b, ',')
			}
			b = append(b, `"content":`...)
			b = appendString(b, text)
		}
		b = append(b, '}')
	} else {
		b = r.appendHead(b, "text_completion")
		b = append(b, `,"choices":[{"index":0,"text":`...)
		b = appendString(b, text)
		b = append(b, `,"logprobs":null`...)
	}
	b = append(b, `,"finish_reason":`...)
	if finish == "" {
		b = append(b, "null"...)
	} else {
		b = appendString(b, finishReason(finish))
	}
	return append(b, "}]}\n\n"...)
}

// appendUsageChunk appends the last event of a stream that asked for
// usage: no choices, the usage.
func (r *response) appendUsageChunk(b []byte, u router.Usage) []byte {
	b = append(b, "data: "...)
	if r.chat {
		b = r.appendHead(b, "chat.completion.chunk")
	} else {
		b = r.appendHead(b, "text_completion")
	}
	b = append(b, `,"choices":[],"usage":`...)
	b = appendUsage(b, u)
	return append(b, "}\n\n"...)
}

// appendBody appends a whole non-streaming response.
func (r *response) appendBody(b []byte, res *router.Result) []byte {
	if r.chat {
		b = r.appendHead(b, "chat.completion")
		b = append(b, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
		b = appendString(b, res.Text)
		b = append(b, `},"logprobs":null`...)
	} else {
		b = r.appendHead(b, "text_completion")
		b = append(b, `,"choices":[{"index":0,"text":`...)
		b = appendString(b, res.Text)
		b = append(b, `,"logprobs":null`...)
	}
	b = append(b, `,"finish_reason":`...)
	b = appendString(b, finishReason(res.FinishReason))
	b = append(b, "}]"...)
	if res.Usage.Reported {
		b = append(b, `,"usage":`...)
		b = appendUsage(b, res.Usage)
	}
	return append(b, "}\n"...)
}
