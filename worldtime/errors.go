package worldtime

import (
	"errors"
	"fmt"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrInvalid: an option or argument is out of range. A *ValueError
	// says which one and why.
	ErrInvalid = errors.New("worldtime: invalid value")
	// ErrConflict: another writer changed the world's timeline between
	// read and write, and the change was made conditional on the version
	// it read (Change.IfVersion), or retries ran out. Nothing was applied.
	ErrConflict = errors.New("worldtime: timeline changed concurrently")
	// ErrNotFound: the store holds no timeline for the world.
	ErrNotFound = errors.New("worldtime: no timeline stored")
	// ErrClosed: the clock was closed.
	ErrClosed = errors.New("worldtime: closed")
	// ErrTooManyTimers: scheduling would exceed Options.MaxTimers.
	ErrTooManyTimers = errors.New("worldtime: too many pending timers")
)

// ValueError says which option or argument is invalid and why. It matches
// [ErrInvalid] with errors.Is.
type ValueError struct {
	Field  string
	Reason string
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("worldtime: invalid %s: %s", e.Field, e.Reason)
}

// Is reports whether target is ErrInvalid.
func (e *ValueError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &ValueError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
