package router_test

import (
	"errors"
	"io"
	"testing"

	"github.com/bodybroker/sdk/router"
)

type sliceStream struct {
	ds     []router.Delta
	err    error
	closed bool
}

func (s *sliceStream) Recv() (router.Delta, error) {
	if len(s.ds) == 0 {
		if s.err != nil {
			return router.Delta{}, s.err
		}
		return router.Delta{}, io.EOF
	}
	d := s.ds[0]
	s.ds = s.ds[1:]
	return d, nil
}

func (s *sliceStream) Close() error { s.closed = true; return nil }

func TestCollect(t *testing.T) {
	s := &sliceStream{ds: []router.Delta{{Text: "Well "}, {Text: "met."}, {FinishReason: router.FinishStop, Usage: &router.Usage{CompletionTokens: 2}}}}
	resp, err := router.Collect(s, "m")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text != "Well met." || resp.FinishReason != router.FinishStop || resp.Model != "m" ||
		resp.Usage.CompletionTokens != 2 || !resp.Usage.Reported || !s.closed {
		t.Errorf("Collect = %+v (closed %v), want the whole text, stop, reported usage, closed", resp, s.closed)
	}
	boom := errors.New("boom")
	s = &sliceStream{ds: []router.Delta{{Text: "Well "}}, err: boom}
	if _, err := router.Collect(s, "m"); !errors.Is(err, boom) || !s.closed {
		t.Errorf("Collect of a failing stream = %v (closed %v), want boom and closed", err, s.closed)
	}
}
