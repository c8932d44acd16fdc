package indicators

import (
	"errors"
	"fmt"
)

// Sentinel errors. Functions wrap them with detail; match them with
// errors.Is.
var (
	// ErrBadCamera: a degenerate camera (zero or non-finite forward
	// vector, up parallel to forward, field of view outside (0, π), a
	// non-positive near plane, a singular view-projection matrix).
	ErrBadCamera = errors.New("indicators: bad camera")
	// ErrBadViewport: a viewport with zero, negative or non-finite size.
	ErrBadViewport = errors.New("indicators: bad viewport")
	// ErrBadTarget: a target location that is NaN, infinite or beyond
	// [MaxCoord].
	ErrBadTarget = errors.New("indicators: bad target location")
	// ErrBadOptions: an option out of its documented range.
	ErrBadOptions = errors.New("indicators: bad options")
	// ErrNotSubtle: a style that breaks the subtlety rule ("no massive
	// arrows"); the error is a *[SubtletyError].
	ErrNotSubtle = errors.New("indicators: style is not subtle")
	// ErrNotFound: no indicator with that ID in the set.
	ErrNotFound = errors.New("indicators: no such indicator")
)

// SubtletyError reports the style field that breaks a [Limits] rule. It
// matches [ErrNotSubtle] under errors.Is.
type SubtletyError struct {
	Field string  // the offending field, e.g. "Appearance.Size"
	Value float64 // its value, in the unit the limit uses
	Limit float64 // the largest value allowed
}

func (e *SubtletyError) Error() string {
	return fmt.Sprintf("indicators: style is not subtle: %s = %.3g exceeds %.3g", e.Field, e.Value, e.Limit)
}

// Unwrap returns [ErrNotSubtle].
func (e *SubtletyError) Unwrap() error { return ErrNotSubtle }
