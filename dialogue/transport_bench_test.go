package dialogue_test

import (
	"io"
	"testing"

	"github.com/bodybroker/sdk/dialogue/dialoguev1"
)

// BenchmarkGRPCStreamSayChunks measures the gRPC streaming path chunk by
// chunk (every chunk goes through the send-timeout outbox): one
// 200-sentence reply per iteration over loopback TCP.
func BenchmarkGRPCStreamSayChunks(b *testing.B) {
	const sentences = 200
	text := ""
	for range sentences {
		text += "Aye. "
	}
	h := serve(b, newService(b, &fakeCompleter{respond: replying(text)}, nil), true, nil)
	ctx := as(b.Context(), tokSvc)
	req := &dialoguev1.StreamSayRequest{Utterance: &dialoguev1.Utterance{NpcId: "guard", Text: "Talk.", PlayerId: "p9"}}
	chunks := 0
	b.ReportAllocs()
	for b.Loop() {
		st, err := h.client.StreamSay(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, err := st.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			chunks++
		}
	}
	b.ReportMetric(float64(chunks)/b.Elapsed().Seconds(), "chunks/s")
}
