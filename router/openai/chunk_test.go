package openai

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var chunkSeeds = []string{
	`{"id":"chatcmpl-1","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`,
	`{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Well met,\n\"traveller\" \u00e9\t\\ \/"},"finish_reason":null}]}`,
	`{"choices":[{"index":0,"text":" w3","finish_reason":"length","stop_reason":null}],"usage":null}`,
	`{"object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":50,"total_tokens":62,"prompt_tokens_details":null}}`,
	`{"choices":[{"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2}}`,
	`{"choices":[{"delta":{"content":"a"}},{"delta":{"content":"b"}}]}`,
	`{"error":{"object":"error","message":"boom","type":"InternalServerError","param":null,"code":500}}`,
	`{"object":"error","message":"x","type":"BadRequestError","code":400}`,
	`{"Choices":[{"delta":{"content":"case"}}]}`,
	`{"choices":[{"delta":{"content":"\ud83d\ude00"}}]}`,
	`{"choices":[{"delta":{"content":"dup"},"delta":{"content":"dup2"}}]}`,
	`{"usage":{"prompt_tokens":1.5}}`,
	`{"choices":null,"x":[1,-2.5e3,true,false,null,{"a":"\u0041"}]}`,
	` {"choices":[]} `,
	`{"choices":[]} x`,
	`[]`,
	`{"choices": [`,
}

// TestDecodeChunkReuse decodes chunks one after another into one wireChunk,
// as a stream does, and checks that each decodes exactly as into a fresh
// value: nothing from an earlier chunk survives (a finish reason, a usage,
// a second choice, an error), and the choices slice is reused (until a
// chunk sets "choices" to null).
func TestDecodeChunkReuse(t *testing.T) {
	seq := []struct {
		data    string
		wantErr bool
	}{
		{`{"choices":[{"delta":{"content":"a"},"finish_reason":"stop"},{"text":"t","finish_reason":"length"}],"usage":{"prompt_tokens":1,"completion_tokens":2},"object":"x","message":"m","type":"y"}`, false},
		{`{"choices":[{"delta":{"content":"b"}}]}`, false},
		{`{"choices":[{"delta":null,"text":null,"finish_reason":null}]}`, false},
		{`{"error":{"message":"boom"}}`, false},
		{`{"choices":[{"delta":{"content":"c"}}]}`, false},
		{`{"usage":{"prompt_tokens":1.5}}`, true},
		{`{"choices":[{"delta":{"content":"d"}}]}`, false},
		{`{"choices":[]}`, false},
		{`{"choices":[{"delta":{"content":"e"}}]} x`, true},
		{`{"choices":null}`, false},
		{`{"choices":[{"text":"f"}]}`, false},
	}
	var c wireChunk
	var first *wireChoice
	for i, s := range seq {
		err := c.decode([]byte(s.data))
		if got := err != nil; got != s.wantErr {
			t.Fatalf("chunk %d %s: error %v, want error %v", i, s.data, err, s.wantErr)
		}
		if err != nil {
			continue
		}
		var want wireChunk
		if err := json.Unmarshal([]byte(s.data), &want); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, c, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("chunk %d %s: (-fresh +reused):\n%s", i, s.data, diff)
		}
		switch {
		case c.Choices == nil:
			first = nil // "choices":null drops the buffer
		case len(c.Choices) > 0:
			if first == nil {
				first = &c.Choices[0]
			} else if &c.Choices[0] != first {
				t.Errorf("chunk %d: choices slice reallocated", i)
			}
		}
	}
}

// FuzzDecodeChunk checks the stream's decoder against encoding/json into a
// fresh value: after any earlier chunk, decode accepts exactly what
// json.Unmarshal accepts and yields exactly the same values.
func FuzzDecodeChunk(f *testing.F) {
	for i, s := range chunkSeeds {
		f.Add([]byte(chunkSeeds[(i+4)%len(chunkSeeds)]), []byte(s))
	}
	f.Fuzz(func(t *testing.T, prev, data []byte) {
		var c wireChunk
		_ = c.decode(prev)
		err := c.decode(data)
		var want wireChunk
		wantErr := json.Unmarshal(data, &want)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("decode error %v, encoding/json error %v, on %q", err, wantErr, data)
		}
		if err != nil {
			return
		}
		if diff := cmp.Diff(want, c, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("after %q, %q decodes differently (-fresh +reused):\n%s", prev, data, diff)
		}
	})
}
