package openai

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"
)

// sseBody is a vLLM-shaped 50-token chat stream with usage.
func sseBody() []byte {
	var b bytes.Buffer
	b.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n")
	for i := range 50 {
		fin := "null"
		if i == 49 {
			fin = `"stop"`
		}
		fmt.Fprintf(&b, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":{"content":" w%d"},"finish_reason":%s}]}`+"\n\n", i, fin)
	}
	b.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":0,"model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":50,"total_tokens":55}}` + "\n\n")
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// BenchmarkDecodeStream decodes a 50-token stream with the Model's decoder;
// BenchmarkDecodeMinimal with a minimal bufio.Scanner + json.Unmarshal loop
// that checks nothing, for comparison.
func BenchmarkDecodeStream(b *testing.B) {
	body := sseBody()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		s := &stream{ctx: context.Background(), cancel: func() {}, body: io.NopCloser(bytes.NewReader(nil)), sse: newSSEReader(bytes.NewReader(body)), usage: true}
		n := 0
		for {
			_, err := s.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 50 {
			b.Fatalf("%d deltas", n)
		}
	}
}

func BenchmarkDecodeMinimal(b *testing.B) {
	body := sseBody()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		sc := bufio.NewScanner(bytes.NewReader(body))
		var chunk struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		n := 0
		for sc.Scan() {
			data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: "))
			if !ok || string(data) == "[DONE]" {
				continue
			}
			chunk.Choices = chunk.Choices[:0]
			if err := json.Unmarshal(data, &chunk); err != nil {
				b.Fatal(err)
			}
			if len(chunk.Choices) > 0 && chunk.Choices[0].Delta.Content != "" {
				n++
			}
		}
		if n != 50 {
			b.Fatalf("%d deltas", n)
		}
	}
}
