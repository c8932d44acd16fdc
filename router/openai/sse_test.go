package openai

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bodybroker/sdk/router"
)

func parseAll(t *testing.T, in string) ([]string, error) {
	t.Helper()
	r := newSSEReader(strings.NewReader(in))
	var out []string
	for {
		d, err := r.next()
		if err != nil {
			if err == io.EOF {
				return out, nil
			}
			return out, err
		}
		out = append(out, string(d))
	}
}

func TestSSEReader(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr error
	}{
		{"simple", "data: a\n\ndata: b\n\n", []string{"a", "b"}, nil},
		{"crlf", "data: a\r\n\r\ndata:b\r\n\r\n", []string{"a", "b"}, nil},
		{"multi-line", "data: a\ndata: b\n\n", []string{"a\nb"}, nil},
		{"comments and fields", ": ping\nevent: x\nid: 1\nretry: 5\ndata: a\n\n", []string{"a"}, nil},
		{"blank lines between", "\n\n\ndata: a\n\n\n", []string{"a"}, nil},
		{"empty data", "data:\n\n", []string{""}, nil},
		{"no space", "data:[DONE]\n\n", []string{"[DONE]"}, nil},
		{"field without colon", "data\n\n", []string{""}, nil},
		{"cut inside event", "data: a\n\ndata: b\n", []string{"a"}, io.ErrUnexpectedEOF},
		{"cut inside line", "data: a\n\ndata: b", []string{"a"}, io.ErrUnexpectedEOF},
		{"long line", "data: " + strings.Repeat("x", 10000) + "\n\n", []string{strings.Repeat("x", 10000)}, nil},
		{"too large", "data: " + strings.Repeat("x", maxEventSize+10) + "\n\n", nil, errEventTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAll(t, tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzSSERoundTrip encodes events (separated by NUL in the input) as SSE
// and checks that the reader returns them unchanged.
func FuzzSSERoundTrip(f *testing.F) {
	f.Add("a\x00b")
	f.Add(`{"choices":[{"delta":{"content":"hi"}}]}` + "\x00[DONE]")
	f.Add("multi\nline\x00\x00x")
	f.Fuzz(func(t *testing.T, in string) {
		if strings.ContainsRune(in, '\r') {
			return
		}
		events := strings.Split(in, "\x00")
		var b strings.Builder
		for _, e := range events {
			for _, line := range strings.Split(e, "\n") {
				b.WriteString("data: " + line + "\n")
			}
			b.WriteString("\n")
		}
		got, err := parseAll(t, b.String())
		if err != nil {
			if errors.Is(err, errEventTooLarge) {
				return
			}
			t.Fatalf("parse: %v", err)
		}
		if diff := cmp.Diff(events, got); diff != "" {
			t.Fatalf("events (-want +got):\n%s", diff)
		}
	})
}

// FuzzStream feeds arbitrary bytes to the chat stream decoder: it must
// never panic, must end, must report success (io.EOF) only after a finish
// reason and [DONE], and must report failures as typed errors.
func FuzzStream(f *testing.F) {
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\ndata: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"choices\":[{\"text\":\"hi\",\"finish_reason\":\"length\"}]}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"error\":{\"message\":\"x\",\"type\":\"InternalServerError\",\"code\":500}}\n\ndata: [DONE]\n\n"))
	f.Add([]byte("data: {\"object\":\"error\",\"message\":\"x\"}\n\n"))
	f.Add([]byte("data: {\"choices\": [\n\n"))
	f.Add([]byte("data: [DONE]\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		s := &stream{ctx: context.Background(), cancel: func() {}, body: io.NopCloser(bytes.NewReader(in)), sse: newSSEReader(bytes.NewReader(in)), usage: true}
		var finished bool
		for i := 0; ; i++ {
			if i > len(in)+2 {
				t.Fatal("stream did not end")
			}
			d, err := s.Recv()
			if err == io.EOF {
				if !finished || !bytes.Contains(in, []byte("[DONE]")) {
					t.Fatal("io.EOF without a finish reason and [DONE]")
				}
				break
			}
			if err != nil {
				var se *StreamError
				var ae *APIError
				if !errors.As(err, &se) && !errors.As(err, &ae) {
					t.Fatalf("untyped error %T: %v", err, err)
				}
				break
			}
			if finished {
				t.Fatal("delta after the finish reason")
			}
			if d.FinishReason != "" {
				finished = true
			} else if d.Text == "" {
				t.Fatal("empty delta")
			}
			_ = router.Delta(d)
		}
		s.Close()
	})
}

// TestErrorPayloads covers the shapes vLLM versions use for an error inside
// a stream.
func TestErrorPayloads(t *testing.T) {
	tests := []struct {
		name, payload string
		want          APIError
	}{
		{"openai nested", `{"error":{"message":"boom","type":"InternalServerError","param":null,"code":500}}`, APIError{Type: "InternalServerError", Code: "500", Message: "boom"}},
		{"vllm wrapped object", `{"error":{"object":"error","message":"too long","type":"BadRequestError","param":null,"code":400}}`, APIError{Type: "BadRequestError", Code: "400", Message: "too long"}},
		{"vllm bare object", `{"object":"error","message":"aborted","type":"BadRequestError","code":400}`, APIError{Type: "BadRequestError", Message: "aborted"}},
		{"string code", `{"error":{"message":"x","type":"t","code":"rate_limit"}}`, APIError{Type: "t", Code: "rate_limit", Message: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\ndata: " + tt.payload + "\n\ndata: [DONE]\n\n"
			s := &stream{ctx: context.Background(), cancel: func() {}, body: io.NopCloser(strings.NewReader("")), sse: newSSEReader(strings.NewReader(in))}
			if d, err := s.Recv(); err != nil || d.Text != "hi" {
				t.Fatalf("first delta %+v %v", d, err)
			}
			_, err := s.Recv()
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v is not an *APIError", err)
			}
			if diff := cmp.Diff(tt.want, *ae); diff != "" {
				t.Errorf("APIError (-want +got):\n%s", diff)
			}
		})
	}
}
