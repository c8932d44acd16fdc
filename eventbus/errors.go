package eventbus

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by operations on a Bus or Subscription that has
	// been closed or shut down.
	ErrClosed = errors.New("eventbus: closed")
	// ErrInvalidTopic matches every *TopicError about a topic.
	ErrInvalidTopic = errors.New("eventbus: invalid topic")
	// ErrInvalidPattern matches every *TopicError about a pattern.
	ErrInvalidPattern = errors.New("eventbus: invalid pattern")
	// ErrPayloadTooLarge matches every *PayloadTooLargeError.
	ErrPayloadTooLarge = errors.New("eventbus: payload too large")
	// ErrEventTooLarge matches every *EventTooLargeError.
	ErrEventTooLarge = errors.New("eventbus: event too large")
	// ErrNotSupported is returned when the transport lacks a feature
	// (history on Redis pub/sub, say).
	ErrNotSupported = errors.New("eventbus: not supported by this transport")
	// ErrDecode matches every *DecodeError.
	ErrDecode = errors.New("eventbus: cannot decode payload")
	// ErrHandlerPanic matches every *PanicError.
	ErrHandlerPanic = errors.New("eventbus: handler panicked")
	// ErrInvalidOptions matches every *OptionError.
	ErrInvalidOptions = errors.New("eventbus: invalid options")
)

// OptionError reports a configuration field that New, Subscribe or a
// transport's constructor refuses (a negative size, an unknown policy).
// Field names the struct and field ("Options.HistorySize",
// "SubscribeOptions.Overflow", "StreamsOptions.MaxLen").
type OptionError struct {
	Field  string
	Value  any
	Reason string
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("eventbus: invalid %s %v: %s", e.Field, e.Value, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidOptions) succeed.
func (e *OptionError) Is(target error) bool { return target == ErrInvalidOptions }

// TopicError reports a malformed topic or pattern.
type TopicError struct {
	Topic   string
	Reason  string
	Pattern bool
}

func (e *TopicError) Error() string {
	what := "topic"
	if e.Pattern {
		what = "pattern"
	}
	return fmt.Sprintf("eventbus: invalid %s %q: %s", what, e.Topic, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidTopic) or ErrInvalidPattern succeed.
func (e *TopicError) Is(target error) bool {
	if e.Pattern {
		return target == ErrInvalidPattern
	}
	return target == ErrInvalidTopic
}

// PayloadTooLargeError reports a payload over Options.MaxPayload.
type PayloadTooLargeError struct {
	Topic string
	Size  int
	Limit int
}

func (e *PayloadTooLargeError) Error() string {
	return fmt.Sprintf("eventbus: payload for %q is %d bytes, over the %d-byte limit", e.Topic, e.Size, e.Limit)
}

// Is makes errors.Is(err, ErrPayloadTooLarge) succeed.
func (e *PayloadTooLargeError) Is(target error) bool { return target == ErrPayloadTooLarge }

// EventTooLargeError reports an event whose envelope is over
// Options.MaxEventBytes. Size is the envelope's size as MaxEventBytes counts
// it, except that counting stops at the first header that takes it over
// Limit (so a huge header map is not walked to the end).
type EventTooLargeError struct {
	Topic string
	Size  int
	Limit int
}

func (e *EventTooLargeError) Error() string {
	return fmt.Sprintf("eventbus: event for %q is %d bytes (payload, headers, key, type, source and topic), over the %d-byte limit", e.Topic, e.Size, e.Limit)
}

// Is makes errors.Is(err, ErrEventTooLarge) succeed.
func (e *EventTooLargeError) Is(target error) bool { return target == ErrEventTooLarge }

// DecodeError reports a payload that a typed handler could not decode. It is
// permanent: the event goes to the dead-letter topic without retries.
type DecodeError struct {
	Topic string
	ID    ID
	Type  string // the Go type the handler wanted
	Err   error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("eventbus: cannot decode event %s on %q as %s: %v", e.ID, e.Topic, e.Type, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrDecode) succeed.
func (e *DecodeError) Is(target error) bool { return target == ErrDecode }

// PanicError is what a panicking handler's call turns into. The panic is
// recovered, counted in SubscriptionStats.Panics, and handled like any other
// handler error (retried, then dead-lettered).
//
// A handler call that ends in runtime.Goexit (t.FailNow or t.SkipNow in a
// test's handler, say) is treated the same way, with Goexit set and Value
// nil: it is counted in SubscriptionStats.Goexits, and the worker goes on in
// a new goroutine.
type PanicError struct {
	Value  any
	Stack  []byte
	Goexit bool
}

func (e *PanicError) Error() string {
	if e.Goexit {
		return "eventbus: handler called runtime.Goexit"
	}
	return fmt.Sprintf("eventbus: handler panicked: %v", e.Value)
}

// Is makes errors.Is(err, ErrHandlerPanic) succeed.
func (e *PanicError) Is(target error) bool { return target == ErrHandlerPanic }

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying: the event goes straight to the
// dead-letter topic. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent or is a
// *DecodeError.
func IsPermanent(err error) bool {
	var p *permanentError
	var d *DecodeError
	return errors.As(err, &p) || errors.As(err, &d)
}
