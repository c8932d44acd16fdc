package gateway

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"tier1","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"npc/greeting","messages":[{"role":"system","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],"stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"m","prompt":["x"],"max_tokens":5,"stop":"\n","temperature":0.5}`,
		`{"model":"m","prompt":"x","stop":["a","b","c","d","e"]}`,
		`{"model":"m","messages":[{"role":"tool","content":null}],"n":2}`,
		`{"model":"m","messages":[],"max_completion_tokens":-1}`,
		`[]`, `null`, `{"model":1}`,
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, body []byte, chat bool) {
		req, err := decodeRequest(body, chat)
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error %v does not match ErrInvalidRequest", err)
			}
			var re *RequestError
			if !errors.As(err, &re) || re.Message == "" {
				t.Fatalf("error %v is not a *RequestError with a message", err)
			}
			return
		}
		if req.Model == "" || len(req.Messages) == 0 || len(req.Messages) > MaxMessages || len(req.Stop) > MaxStop || req.MaxTokens < 0 {
			t.Fatalf("accepted an invalid request: %+v", req)
		}
		if req.IncludeUsage && !req.Stream {
			t.Fatalf("include_usage without stream: %+v", req)
		}
		// The error object the gateway would answer is valid JSON.
		e := errorFor(invalid("p", "%s", req.Model))
		out := appendErrorObject(nil, e)
		if !json.Valid(out) {
			t.Fatalf("error object %q is not JSON", out)
		}
		// Every accepted string survives a round trip through the encoder.
		for _, m := range req.Messages {
			var back string
			if err := json.Unmarshal(appendString(nil, m.Content), &back); err != nil {
				t.Fatalf("appendString(%q): %v", m.Content, err)
			}
			if utf8.ValidString(m.Content) && back != m.Content {
				t.Fatalf("round trip %q → %q", m.Content, back)
			}
		}
	})
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "hi", "a\"b\\c\n\t\x00\x1f", "\u2028\u2029", "\xff\xfe", "日本語"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := appendString(nil, s)
		want, _ := json.Marshal(s)
		var got, ref string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("appendString(%q) = %s: %v", s, out, err)
		}
		json.Unmarshal(want, &ref)
		if got != ref {
			t.Fatalf("appendString(%q) decodes to %q, encoding/json's to %q", s, got, ref)
		}
	})
}
