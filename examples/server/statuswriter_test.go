package main

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

type failingFlusher struct {
	*httptest.ResponseRecorder
	err error
}

func (f failingFlusher) FlushError() error { return f.err }

// A flush error (a write deadline cutting off a slow client) reaches the
// handler through the access-log wrapper, so dialogue's SSE stream and the
// ops page stop at once instead of writing into a dead connection.
func TestStatusWriterPassesFlushErrors(t *testing.T) {
	cut := errors.New("write deadline exceeded")
	w := &statusWriter{ResponseWriter: failingFlusher{httptest.NewRecorder(), cut}}
	if err := http.NewResponseController(w).Flush(); !errors.Is(err, cut) {
		t.Errorf("Flush through statusWriter = %v, want the connection's error", err)
	}
}
