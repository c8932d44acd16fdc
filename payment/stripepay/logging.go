package stripepay

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"

	"github.com/stripe/stripe-go/v76"
)

// slogLogger adapts slog to stripe-go's LeveledLoggerInterface. stripe-go
// logs every response body at debug level and error messages and body
// samples at error level; those are whole Stripe objects (customer
// emails, names, addresses, client secrets), so they are reduced here to
// object types and IDs, and errors to their status, type, code and
// request ID.
type slogLogger struct{ l *slog.Logger }

var _ stripe.LeveledLoggerInterface = slogLogger{}

func (s slogLogger) Debugf(f string, v ...any) { s.log(slog.LevelDebug, f, v) }
func (s slogLogger) Infof(f string, v ...any)  { s.log(slog.LevelDebug, f, v) }
func (s slogLogger) Warnf(f string, v ...any)  { s.log(slog.LevelDebug, f, v) }
func (s slogLogger) Errorf(f string, v ...any) { s.log(slog.LevelWarn, f, v) }

// maxLoggedIDs bounds the IDs logged for one list response.
const maxLoggedIDs = 20

func (s slogLogger) log(level slog.Level, f string, v []any) {
	ctx := context.Background()
	if !s.l.Enabled(ctx, level) {
		return
	}
	switch {
	case f == "Response: %s" && len(v) == 1:
		body, _ := v[0].(string)
		s.l.Log(ctx, level, "stripe response", responseAttrs(body)...)
		return
	case strings.HasPrefix(f, "%s") && len(v) == 1 && strings.HasPrefix(fmt.Sprint(v[0]), "Couldn't deserialize JSON"):
		// The message carries a sample of the body.
		s.l.Log(ctx, level, "stripe response could not be decoded")
		return
	}
	args := make([]any, len(v))
	for i, a := range v {
		if se, ok := a.(*stripe.Error); ok {
			a = errorSummary(se)
		}
		args[i] = a
	}
	s.l.Log(ctx, level, fmt.Sprintf(f, args...))
}

// responseAttrs names the object in a response body, or, for a list or
// search result, the objects in it (at most maxLoggedIDs).
func responseAttrs(body string) []any {
	var r struct {
		Object string `json:"object"`
		ID     string `json:"id"`
		Data   []struct {
			Object string `json:"object"`
			ID     string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return []any{slog.Int("bytes", len(body))}
	}
	attrs := []any{slog.String("object", r.Object)}
	if r.ID != "" {
		attrs = append(attrs, slog.String("id", r.ID))
	}
	if len(r.Data) > 0 {
		ids := make([]string, 0, min(len(r.Data), maxLoggedIDs))
		for _, d := range r.Data[:min(len(r.Data), maxLoggedIDs)] {
			ids = append(ids, d.ID)
		}
		attrs = append(attrs, slog.Int("count", len(r.Data)), slog.Any("ids", ids))
	}
	return attrs
}

// errorSummary describes a Stripe error without its message, which can
// echo request values (an invalid email address, a name).
func errorSummary(e *stripe.Error) string {
	return fmt.Sprintf("status=%d type=%s code=%s param=%s request_id=%s", e.HTTPStatusCode, e.Type, e.Code, e.Param, e.RequestID)
}
