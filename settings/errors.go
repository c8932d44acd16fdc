package settings

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Per-key problems are reported in a *[ValidationError]
// whose Problems each wrap one of the first group; match with errors.Is.
var (
	// ErrUnknownKey: the key is not in the schema.
	ErrUnknownKey = errors.New("settings: unknown key")
	// ErrWrongType: the value does not have the setting's type.
	ErrWrongType = errors.New("settings: wrong type")
	// ErrOutOfRange: a number outside the setting's range.
	ErrOutOfRange = errors.New("settings: out of range")
	// ErrNotAllowed: a value that is not one of the setting's choices.
	ErrNotAllowed = errors.New("settings: value not allowed")
	// ErrBindingConflict: two actions bound to the same key or button, or
	// a malformed binding.
	ErrBindingConflict = errors.New("settings: binding conflict")
	// ErrServerOnly: a client tried to write a TagServerOnly key.
	ErrServerOnly = errors.New("settings: server-only key")
	// ErrTooLarge: a document, value or request over its byte or count
	// limit.
	ErrTooLarge = errors.New("settings: too large")
	// ErrMalformed: input that is not a well-formed document.
	ErrMalformed = errors.New("settings: malformed document")

	// ErrConflict: a write was based on a stale revision of a key whose
	// policy is ConflictReject; the error is a *[ConflictError].
	ErrConflict = errors.New("settings: conflicting write")
	// ErrInvalidSchema: a schema definition is inconsistent.
	ErrInvalidSchema = errors.New("settings: invalid schema")
	// ErrInvalidOptions: New was given inconsistent Options.
	ErrInvalidOptions = errors.New("settings: invalid options")
	// ErrNoPreview: no preview with that ID is open for the player (it
	// was confirmed, reverted or timed out).
	ErrNoPreview = errors.New("settings: no such preview")
	// ErrPreviewLimit: too many previews are open.
	ErrPreviewLimit = errors.New("settings: too many open previews")
	// ErrClosed: the Manager was closed.
	ErrClosed = errors.New("settings: closed")
	// ErrBadPlayer: an empty or oversize player ID.
	ErrBadPlayer = errors.New("settings: bad player ID")
)

// Problem is what is wrong with one key.
type Problem struct {
	Key    string
	Reason string
	Err    error // one of the sentinels above
}

func (p Problem) Error() string { return p.Key + ": " + p.Reason }
func (p Problem) Unwrap() error { return p.Err }

// ValidationError lists every offending key of a document or change set,
// in key order. errors.Is(err, ErrOutOfRange) reports whether any problem
// is out of range, and so on.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("settings: invalid: ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap returns each problem, so errors.Is matches any of their sentinels.
func (e *ValidationError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// ConflictError lists the keys whose write was refused because they
// changed since the revision the writer saw.
type ConflictError struct {
	Keys    []string
	Current map[string]Entry // the stored entries of those keys (absent: deleted)
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("settings: conflicting write on %s", strings.Join(e.Keys, ", "))
}

// Is reports ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }
