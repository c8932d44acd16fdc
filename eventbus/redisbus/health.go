package redisbus

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/bodybroker/sdk/eventbus"
	"github.com/bodybroker/sdk/internal/backoff"
	"github.com/redis/go-redis/v9"
)

// health tracks the connection state that TransportStats report: an outage
// begins with the first connection-level error and ends with the next
// successful call.
type health struct {
	mu          sync.Mutex
	connected   bool
	downSince   time.Time
	downtime    time.Duration
	disconnects uint64
	reconnects  uint64
	errors      uint64
	lastErr     string
	lastErrAt   time.Time
	onError     func(error)
	logger      *slog.Logger
	name        string
	now         func() time.Time // the transport's Options.Now
}

func newHealth(now func() time.Time) *health { return &health{connected: true, now: now} }

// isOutage reports whether err means Redis could not be reached (as opposed
// to Redis answering with an error about the command).
func isOutage(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, redis.Nil) {
		return false
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		msg := rerr.Error()
		// A restarting Redis answers LOADING while it reads its AOF.
		return strings.HasPrefix(msg, "LOADING") || strings.HasPrefix(msg, "MASTERDOWN") || strings.HasPrefix(msg, "TRYAGAIN")
	}
	var nerr net.Error
	return errors.As(err, &nerr) || errors.Is(err, net.ErrClosed) || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "EOF") ||
		strings.Contains(err.Error(), "broken pipe") || strings.Contains(err.Error(), "connection reset")
}

func (h *health) fail(err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	h.mu.Lock()
	h.errors++
	h.lastErr = err.Error()
	h.lastErrAt = h.now()
	began := false
	if isOutage(err) && h.connected {
		h.connected = false
		h.downSince = h.lastErrAt
		h.disconnects++
		began = true
	}
	cb := h.onError
	h.mu.Unlock()
	switch {
	case cb != nil:
		cb(err)
	case began:
		h.log().Warn("redisbus: Redis unreachable, retrying with backoff", "transport", h.name, "err", err)
	case !isOutage(err):
		h.log().Warn("redisbus: "+err.Error(), "transport", h.name)
	}
}

func (h *health) log() *slog.Logger {
	if h.logger != nil {
		return h.logger
	}
	return slog.Default()
}

func (h *health) ok() {
	h.mu.Lock()
	if h.connected {
		h.mu.Unlock()
		return
	}
	h.connected = true
	out := h.now().Sub(h.downSince)
	h.downtime += out
	h.downSince = time.Time{}
	h.reconnects++
	cb := h.onError
	h.mu.Unlock()
	if cb == nil {
		h.log().Info("redisbus: Redis reachable again", "transport", h.name, "outage", out)
	}
}

func (h *health) fill(st *eventbus.TransportStats) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st.Connected = h.connected
	st.Disconnects = h.disconnects
	st.Reconnects = h.reconnects
	st.DownSince = h.downSince
	st.Downtime = h.downtime
	if !h.connected {
		st.Downtime += h.now().Sub(h.downSince)
	}
	st.Errors = h.errors
	st.LastError = h.lastErr
	st.LastErrorAt = h.lastErrAt
}

// reconnectPolicy is the backoff of every retry loop: each wait is random
// between lo and a ceiling that starts at 2·lo and doubles up to hi, so that
// the servers of a studio do not all retry in lockstep after an outage.
func reconnectPolicy(lo, hi time.Duration) backoff.Policy {
	return backoff.Policy{Min: lo, Initial: min(2*lo, hi), Max: hi}
}

// tryAgain reports whether err is a Redis reply saying that the command was
// not executed and may succeed later: LOADING (a restarted Redis replaying
// its AOF), MASTERDOWN or TRYAGAIN.
func tryAgain(err error) bool {
	var rerr redis.Error
	if !errors.As(err, &rerr) {
		return false
	}
	msg := rerr.Error()
	return strings.HasPrefix(msg, "LOADING") || strings.HasPrefix(msg, "MASTERDOWN") || strings.HasPrefix(msg, "TRYAGAIN")
}

// withRefusal adds refused, the error of an earlier try that Redis refused
// (LOADING), to err when err is only the ctx ending during a later try, so
// that the caller learns why it ran out of time.
func withRefusal(err, refused error) error {
	if refused != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		return errors.Join(err, refused)
	}
	return err
}

// retryWait waits before try n+1 of a command Redis did not execute
// (tryAgain), within ctx: it reports false, at once, when ctx's deadline
// (or, without one, budget counted from start) leaves no room for the wait.
func retryWait(ctx context.Context, p backoff.Policy, n int, start time.Time, budget time.Duration) bool {
	d := p.Delay(n)
	end, ok := ctx.Deadline()
	if !ok {
		end = start.Add(budget)
	}
	if time.Until(end) <= d {
		return false
	}
	return sleepCtx(ctx, d)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
