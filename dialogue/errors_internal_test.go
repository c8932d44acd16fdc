package dialogue

import (
	"fmt"
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"
)

// TestNewSentinelsReachTransports: the sentinels added for unknown
// sessions and failing dependencies map to their gRPC code, HTTP status
// and, on a Converse stream, a TurnError that keeps the stream open.
func TestNewSentinelsReachTransports(t *testing.T) {
	for _, tt := range []struct {
		err      error
		code     codes.Code
		httpCode int
	}{
		{fmt.Errorf("%w: %q", ErrSessionNotFound, "s"), codes.NotFound, http.StatusNotFound},
		{fmt.Errorf("%w: store: %w", ErrUnavailable, fmt.Errorf("dial tcp: refused")), codes.Unavailable, http.StatusServiceUnavailable},
	} {
		if got := Code(tt.err); got != tt.code {
			t.Errorf("Code(%v) = %v, want %v", tt.err, got, tt.code)
		}
		if got := httpStatus(Code(tt.err)); got != tt.httpCode {
			t.Errorf("httpStatus(Code(%v)) = %d, want %d", tt.err, got, tt.httpCode)
		}
		if te := turnError(tt.err); te == nil || codes.Code(te.GetCode()) != tt.code {
			t.Errorf("turnError(%v) = %v, want a TurnError with code %v", tt.err, te, tt.code)
		}
	}
}
