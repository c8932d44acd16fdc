package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/bodybroker/sdk/router"
)

// Limits on a request body's contents, on top of Options.MaxRequestBytes.
const (
	// MaxMessages bounds the messages of one chat request.
	MaxMessages = 1024
	// MaxStop bounds the stop sequences of one request, as OpenAI does.
	MaxStop = 4
)

// completionRequest is a decoded /v1/chat/completions or /v1/completions
// body: the fields the gateway acts on. Fields it does not know (top_p,
// seed, …) are accepted and ignored.
type completionRequest struct {
	Model        string
	Messages     []router.Message
	Stream       bool
	IncludeUsage bool
	MaxTokens    int
	Temperature  *float64
	Stop         []string
	User         string
}

type wireContentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type wireInMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type wireInRequest struct {
	Model         string          `json:"model"`
	Messages      []wireInMessage `json:"messages"`
	Prompt        json.RawMessage `json:"prompt"`
	Stream        bool            `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	Stop                json.RawMessage `json:"stop"`
	N                   *int            `json:"n"`
	User                string          `json:"user"`
}

// decodeRequest decodes a request body; chat says which endpoint it was
// sent to. Every error wraps ErrInvalidRequest (a *RequestError naming the
// offending field).
func decodeRequest(body []byte, chat bool) (completionRequest, error) {
	var w wireInRequest
	var req completionRequest
	if err := json.Unmarshal(body, &w); err != nil {
		return req, invalid("", "the body is not a valid JSON request: %v", err)
	}
	if w.Model == "" {
		return req, invalid("model", "model is required")
	}
	req.Model = w.Model
	req.Stream = w.Stream
	// stream_options without stream is ignored (OpenAI rejects it, but
	// clients reuse one set of parameters for both calls).
	if w.StreamOptions != nil && w.Stream {
		req.IncludeUsage = w.StreamOptions.IncludeUsage
	}
	if w.N != nil && *w.N != 1 {
		return req, invalid("n", "only n = 1 is supported")
	}
	switch {
	case w.MaxCompletionTokens != nil:
		req.MaxTokens = *w.MaxCompletionTokens
	case w.MaxTokens != nil:
		req.MaxTokens = *w.MaxTokens
	}
	if req.MaxTokens < 0 || (req.MaxTokens == 0 && (w.MaxCompletionTokens != nil || w.MaxTokens != nil)) {
		return req, invalid("max_tokens", "max_tokens must be positive")
	}
	if t := w.Temperature; t != nil {
		if *t < 0 || *t > 2 {
			return req, invalid("temperature", "temperature must be between 0 and 2")
		}
		req.Temperature = t
	}
	stop, err := decodeStop(w.Stop)
	if err != nil {
		return req, err
	}
	req.Stop = stop
	req.User = w.User
	if chat {
		if w.Prompt != nil {
			return req, invalid("prompt", "prompt belongs to /v1/completions; chat takes messages")
		}
		req.Messages, err = decodeMessages(w.Messages)
	} else {
		if w.Messages != nil {
			return req, invalid("messages", "messages belong to /v1/chat/completions; completions take a prompt")
		}
		req.Messages, err = decodePrompt(w.Prompt)
	}
	return req, err
}

func decodeMessages(in []wireInMessage) ([]router.Message, error) {
	if len(in) == 0 {
		return nil, invalid("messages", "messages must not be empty")
	}
	if len(in) > MaxMessages {
		return nil, invalid("messages", "at most %d messages", MaxMessages)
	}
	out := make([]router.Message, len(in))
	for i, m := range in {
		switch m.Role {
		case "system", "developer":
			out[i].Role = router.RoleSystem
		case "user":
			out[i].Role = router.RoleUser
		case "assistant":
			out[i].Role = router.RoleAssistant
		default:
			return nil, invalid(msgParam(i)+".role", "unsupported role %q (system, developer, user and assistant are)", m.Role)
		}
		text, err := decodeContent(m.Content, i)
		if err != nil {
			return nil, err
		}
		out[i].Content = text
	}
	return out, nil
}

// msgParam names message i in errors.
func msgParam(i int) string { return "messages[" + strconv.Itoa(i) + "]" }

// decodeContent accepts a string or an array of text parts, joined; i is
// the message's index, for errors.
func decodeContent(raw json.RawMessage, i int) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil // an assistant message may have no content
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", invalid(msgParam(i)+".content", "content is not a string: %v", err)
		}
		return s, nil
	}
	var parts []wireContentPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", invalid(msgParam(i)+".content", "content must be a string or an array of text parts")
	}
	var b strings.Builder
	for j, p := range parts {
		if p.Type != "text" {
			return "", invalid(fmt.Sprintf("%s.content[%d].type", msgParam(i), j), "unsupported content part %q (only text is)", p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// decodePrompt accepts a string or an array of one string, and makes it
// the single user message of the request.
func decodePrompt(raw json.RawMessage) ([]router.Message, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, invalid("prompt", "prompt is required")
	}
	var s string
	if raw[0] == '[' {
		var list []string
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, invalid("prompt", "prompt must be a string or an array of one string")
		}
		if len(list) != 1 {
			return nil, invalid("prompt", "only one prompt per request is supported")
		}
		s = list[0]
	} else if err := json.Unmarshal(raw, &s); err != nil {
		return nil, invalid("prompt", "prompt must be a string or an array of one string")
	}
	return []router.Message{{Role: router.RoleUser, Content: s}}, nil
}

func decodeStop(raw json.RawMessage) ([]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, invalid("stop", "stop must be a string or an array of strings")
		}
		return []string{s}, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, invalid("stop", "stop must be a string or an array of strings")
	}
	if len(list) > MaxStop {
		return nil, invalid("stop", "at most %d stop sequences", MaxStop)
	}
	return list, nil
}
