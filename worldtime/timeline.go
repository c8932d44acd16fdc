package worldtime

import (
	"math"
	"time"
)

// ChangeKind names what a segment changed.
type ChangeKind string

// Change kinds.
const (
	ChangeStart  ChangeKind = "start"  // the world's first segment
	ChangeScale  ChangeKind = "scale"  // new speed, game time continuous
	ChangePause  ChangeKind = "pause"  // game time stands still
	ChangeResume ChangeKind = "resume" // game time runs again at the segment's scale
	ChangeSkip   ChangeKind = "skip"   // game time jumps forward
	ChangeSet    ChangeKind = "set"    // game time set to a value, possibly backwards
)

// Segment is one piece of a world's timeline: from RealEpoch on (until the
// next segment), game time = GameEpoch + (real − RealEpoch) × Scale, or
// GameEpoch while Paused. From is the game time just before the segment
// took effect, so From ≠ GameEpoch marks a skip or a set. Segments are
// plain values; stores and payloads carry them as JSON.
type Segment struct {
	Version   int64      `json:"version"`
	Kind      ChangeKind `json:"kind"`
	RealEpoch time.Time  `json:"real_epoch"`
	GameEpoch Instant    `json:"game_epoch_us"`
	From      Instant    `json:"from_us"`
	Scale     Scale      `json:"scale"`
	Paused    bool       `json:"paused,omitempty"`
}

// GameAt returns the game time at real instant t under this segment alone
// (t before RealEpoch gives GameEpoch).
func (s Segment) GameAt(t time.Time) Instant { return s.gameAt(t.UnixNano()) }

func (s Segment) gameAt(real int64) Instant {
	if s.Paused || real <= s.RealEpoch.UnixNano() {
		return s.GameEpoch
	}
	g, _ := addSat(int64(s.GameEpoch), s.Scale.gameDelta(real-s.RealEpoch.UnixNano()))
	return Instant(g)
}

// realAt returns the first real instant (Unix ns) at which this segment
// reaches game time g, or false if it never does (paused, or g saturates).
func (s Segment) realAt(g Instant) (int64, bool) {
	if g <= s.GameEpoch {
		return s.RealEpoch.UnixNano(), true
	}
	if s.Paused {
		return 0, false
	}
	r, ok := addSat(s.RealEpoch.UnixNano(), s.Scale.realDelta(int64(g-s.GameEpoch)))
	return r, ok && r != math.MaxInt64
}

// Timeline is a world's clock: its segments in order of RealEpoch, and the
// version the store issued for it. Clients need only the segment in effect
// and any scheduled after it (see [Clock.Payload]). It is a plain value
// (the zero value has no segments and is not valid); [Clock.Timeline]
// returns a copy the caller may keep.
type Timeline struct {
	World    string    `json:"world"`
	Version  int64     `json:"version"`
	Segments []Segment `json:"segments"`
}

// MaxSegments bounds how many segments a timeline keeps. Older segments
// (superseded by one already in effect) are dropped first; a change that
// would leave more than MaxSegments scheduled ones is rejected.
const MaxSegments = 16

// segmentAt returns the index of the segment in effect at real (Unix ns):
// the last one whose RealEpoch ≤ real, or 0 when real precedes them all.
func (tl *Timeline) segmentAt(real int64) int {
	for i := len(tl.Segments) - 1; i > 0; i-- {
		if tl.Segments[i].RealEpoch.UnixNano() <= real {
			return i
		}
	}
	return 0
}

// GameAt returns the game time at real instant t.
func (tl *Timeline) GameAt(t time.Time) Instant {
	if len(tl.Segments) == 0 {
		return 0
	}
	return tl.Segments[tl.segmentAt(t.UnixNano())].gameAt(t.UnixNano())
}

// Change is one edit of the timeline, for [Clock.Apply]. Set Kind and the
// field it uses; the others are ignored. The zero value (no Kind) is
// invalid.
type Change struct {
	Kind ChangeKind
	// Scale is the new speed (ChangeScale).
	Scale Scale
	// By is how far to skip forward in game time (ChangeSkip), > 0.
	By time.Duration
	// To is the game time to set (ChangeSet), ≥ 0.
	To Instant
	// At, if not zero, is the real instant the change takes effect: give
	// every server and client the same future instant (e.g. now + 2×
	// the worst round trip) and they all switch together. It must not be
	// before the timeline's last segment. Zero means now.
	At time.Time
	// IfVersion, if not zero, makes the change conditional: it applies
	// only if the stored timeline still has this version, else
	// ErrConflict. Zero means: apply to whatever the latest version is.
	IfVersion int64
}

// apply returns the timeline with ch appended at real instant at (Unix ns),
// pruning segments superseded before now. ok is false when the change is a
// no-op (pause while paused, resume while running, set to the current value).
func (tl Timeline) apply(ch Change, at, now int64) (Timeline, bool, error) {
	last := tl.Segments[len(tl.Segments)-1]
	if at < last.RealEpoch.UnixNano() {
		return tl, false, invalid("change time", "%v is before the last scheduled change at %v", time.Unix(0, at).UTC(), last.RealEpoch.UTC())
	}
	g0 := last.gameAt(at)
	s := Segment{Version: tl.Version + 1, Kind: ch.Kind, RealEpoch: time.Unix(0, at).UTC(), GameEpoch: g0, From: g0, Scale: last.Scale, Paused: last.Paused}
	switch ch.Kind {
	case ChangeScale:
		if err := ch.Scale.validate(); err != nil {
			return tl, false, err
		}
		if ch.Scale == last.Scale {
			return tl, false, nil
		}
		s.Scale = ch.Scale
	case ChangePause:
		if last.Paused {
			return tl, false, nil
		}
		s.Paused = true
	case ChangeResume:
		if !last.Paused {
			return tl, false, nil
		}
		s.Paused = false
	case ChangeSkip:
		if ch.By <= 0 {
			return tl, false, invalid("skip", "%v must be positive (to go back, set the time)", ch.By)
		}
		if ch.By < time.Microsecond {
			return tl, false, invalid("skip", "%v is shorter than the clock's resolution (1µs)", ch.By)
		}
		g, ok := addSat(int64(g0), int64(ch.By/time.Microsecond))
		if !ok {
			return tl, false, invalid("skip", "%v overflows game time", ch.By)
		}
		s.GameEpoch = Instant(g)
	case ChangeSet:
		if ch.To < 0 {
			return tl, false, invalid("set time", "%d is negative", ch.To)
		}
		if ch.To == g0 {
			return tl, false, nil
		}
		s.GameEpoch = ch.To
	default:
		return tl, false, invalid("change kind", "%q is not scale, pause, resume, skip or set", ch.Kind)
	}
	segs := make([]Segment, 0, len(tl.Segments)+1)
	// Drop segments superseded by one already in effect at now.
	first := tl.segmentAt(now)
	segs = append(segs, tl.Segments[first:]...)
	segs = append(segs, s)
	if len(segs) > MaxSegments {
		return tl, false, invalid("change", "more than %d changes scheduled", MaxSegments)
	}
	return Timeline{World: tl.World, Version: tl.Version + 1, Segments: segs}, true, nil
}

// Validate checks a timeline read from or written to a store: at least
// one segment, valid scales, no negative game time, segments in order.
func (tl Timeline) Validate() error {
	if len(tl.Segments) == 0 {
		return invalid("timeline", "has no segments")
	}
	for i, s := range tl.Segments {
		if s.GameEpoch < 0 || s.From < 0 {
			return invalid("timeline", "segment %d has a negative game time", i)
		}
		if err := s.Scale.validate(); err != nil {
			return err
		}
		if i > 0 && s.RealEpoch.Before(tl.Segments[i-1].RealEpoch) {
			return invalid("timeline", "segment %d starts before segment %d", i, i-1)
		}
	}
	return nil
}
