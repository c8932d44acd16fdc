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
}

func TestFastChunkTakesCommonShapes(t *testing.T) {
	for i, s := range chunkSeeds[:6] {
		var c wireChunk
		if !fastChunk([]byte(s), &c, nil) {
			t.Errorf("seed %d: fast path not taken for %s", i, s)
		}
	}
	for _, s := range []string{chunkSeeds[6], chunkSeeds[7], chunkSeeds[8], chunkSeeds[9], chunkSeeds[10], chunkSeeds[11], chunkSeeds[14], chunkSeeds[15]} {
		var c wireChunk
		if fastChunk([]byte(s), &c, nil) {
			t.Errorf("fast path taken for %s", s)
		}
	}
}

// FuzzChunkDecoders checks that whenever the fast path accepts a chunk,
// encoding/json accepts it too and decodes exactly the same values.
func FuzzChunkDecoders(f *testing.F) {
	for _, s := range chunkSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast wireChunk
		if !fastChunk(data, &fast, nil) {
			return
		}
		var slow wireChunk
		if err := json.Unmarshal(data, &slow); err != nil {
			t.Fatalf("fast path accepted what encoding/json rejects (%v): %q", err, data)
		}
		if diff := cmp.Diff(slow, fast, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("decoders disagree on %q (-json +fast):\n%s", data, diff)
		}
	})
}
