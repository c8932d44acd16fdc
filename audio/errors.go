package audio

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors about a particular value are a *[ValueError] that
// wraps one of these; match them with errors.Is.
var (
	// ErrInvalidValue: a gain, volume, slider position, intensity,
	// distance or duration is NaN, infinite or outside its range.
	ErrInvalidValue = errors.New("audio: invalid value")
	// ErrUnknownBus: a bus name that the mixer does not have.
	ErrUnknownBus = errors.New("audio: unknown bus")
	// ErrUnknownRule: a ducking rule name the ducker does not have.
	ErrUnknownRule = errors.New("audio: unknown duck rule")
	// ErrBusCycle: a bus hierarchy whose parent links form a cycle, or
	// that has no single root.
	ErrBusCycle = errors.New("audio: bus hierarchy is not a tree")
	// ErrDuplicate: a bus, rule, limit or voice ID given twice.
	ErrDuplicate = errors.New("audio: duplicate name")
	// ErrNeverDucked: a ducking rule targets a bus that is never ducked
	// (voice, by default).
	ErrNeverDucked = errors.New("audio: bus is never ducked")
	// ErrUnknownVoice: a voice ID the pool does not hold.
	ErrUnknownVoice = errors.New("audio: unknown voice")
	// ErrTooManyVoices: the pool already tracks Options.MaxVoices voices
	// (playing and virtual).
	ErrTooManyVoices = errors.New("audio: too many voices")
	// ErrUnknownTaper: a taper version this release does not know.
	ErrUnknownTaper = errors.New("audio: unknown taper version")
	// ErrUnknownWeather: a weather name outside the weather set.
	ErrUnknownWeather = errors.New("audio: unknown weather")
	// ErrCueGap: a client missed a cue and needs a new snapshot.
	ErrCueGap = errors.New("audio: cue sequence gap")
	// ErrTooManyPlayers: per-player volumes for more than
	// Options.MaxPlayers players.
	ErrTooManyPlayers = errors.New("audio: too many players")
	// ErrClosed: the director was closed.
	ErrClosed = errors.New("audio: closed")
)

// ValueError reports a bad input value: which field, the value and why.
// It wraps ErrInvalidValue or another sentinel.
type ValueError struct {
	Field string
	Value any
	Err   error
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("%v: %s = %v", e.Err, e.Field, e.Value)
}

func (e *ValueError) Unwrap() error { return e.Err }

func invalid(field string, v any) error {
	return &ValueError{Field: field, Value: v, Err: ErrInvalidValue}
}
