package worldtime

import "math"

// EventKind says what an [Event] reports.
type EventKind uint8

// Event kinds. At one instant, events come in this order: day, phase,
// hour.
const (
	EventDay     EventKind = iota + 1 // a new day began (midnight)
	EventPhase                        // a new phase began
	EventHour                         // a new hour began
	EventSetBack                      // the time was set backwards
)

func (k EventKind) String() string {
	switch k {
	case EventDay:
		return "day"
	case EventPhase:
		return "phase"
	case EventHour:
		return "hour"
	case EventSetBack:
		return "set-back"
	}
	return "unknown"
}

// Coalesce is the policy for boundaries crossed by a skip (or a forward
// set).
type Coalesce uint8

const (
	// CoalesceNone delivers every crossed boundary, in order (the default).
	CoalesceNone Coalesce = iota
	// CoalesceLatest delivers only the last crossed boundary of each kind
	// (day, phase, hour), in order; the others are counted in
	// Stats.EventsCoalesced. Use it when skips may be long.
	CoalesceLatest
)

// Event is a boundary the world's clock crossed, or a set-back, as
// [Clock.Observe] delivers it (a plain value). Events are computed from
// the timeline (the next boundary is known in advance), so none is
// missed, even across skips.
type Event struct {
	World string
	Kind  EventKind
	// Time is the calendar at the boundary (for EventSetBack: at the time
	// set). Time.Phase is the phase that began for EventPhase.
	Time Time
	// FromPhase is the phase that ended (EventPhase) or the phase before
	// the set (EventSetBack).
	FromPhase string
	// From is the game time before the set (EventSetBack only).
	From Instant
	// Skipped marks a boundary crossed by a skip or forward set rather
	// than by time passing.
	Skipped bool
	// Version is the timeline version that produced the event.
	Version int64
}

// boundaries enumerates the day, phase and hour boundaries in (a, b].
type boundaries struct{ k *calendar }

// next returns the first boundary instant after g and which kinds fall on
// it, as a bit set (1<<EventDay | …).
func (bs boundaries) next(g Instant) (Instant, uint8) {
	us := int64(g)
	nh := (us/hourMicros + 1) * hourMicros
	best, kinds := nh, uint8(1<<EventHour)
	day := us / dayMicros * dayMicros
	tod := us - day
	k := bs.k
	np := day + dayMicros + k.starts[0]
	for _, s := range k.starts {
		if s > tod {
			np = day + s
			break
		}
	}
	if np < best {
		best, kinds = np, 1<<EventPhase
	} else if np == best {
		kinds |= 1 << EventPhase
	}
	if best%dayMicros == 0 {
		kinds |= 1 << EventDay
	}
	if us > math.MaxInt64-2*dayMicros {
		return MaxInstant, 0
	}
	return Instant(best), kinds
}

// lastOf returns the last boundary of kind in (a, b] and how many there
// are; ok is false when there is none.
func (bs boundaries) lastOf(kind EventKind, a, b Instant) (last Instant, n int64) {
	var period int64
	var offs []int64
	switch kind {
	case EventHour:
		period, offs = hourMicros, []int64{0}
	case EventDay:
		period, offs = dayMicros, []int64{0}
	case EventPhase:
		period, offs = dayMicros, bs.k.starts
	}
	last = -1
	for _, o := range offs {
		c := floorDiv(int64(b)-o, period) - floorDiv(int64(a)-o, period)
		if c <= 0 {
			continue
		}
		n += c
		if l := floorDiv(int64(b)-o, period)*period + o; Instant(l) > last {
			last = Instant(l)
		}
	}
	return last, n
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && (a < 0) {
		q--
	}
	return q
}

// Event-bus topics. Each carries one payload type, JSON-encoded, keyed by
// world ID.
const (
	TopicPhase = "world.time.phase" // PhaseChanged
	TopicHour  = "world.time.hour"  // HourChanged
	TopicDay   = "world.time.day"   // DayChanged
	TopicSet   = "world.time.set"   // TimeSet (set backwards)
)

// PhaseChanged is the payload of a world.time.phase event. The original
// system's day_world_activated and night_world_activated are this event
// with To "day" and "night" (dawn and dusk activate no world).
type PhaseChanged struct {
	// Version of this payload; currently 1.
	Version int    `json:"version"`
	World   string `json:"world"`
	From    string `json:"from"`
	To      string `json:"to"`
	Day     int    `json:"day"`
	Hour    int    `json:"hour"`
	Minute  int    `json:"minute"`
	Clock   string `json:"time_string"` // "HH:MM"
	// GameTime is game microseconds since 00:00 on day 1.
	GameTime int64 `json:"game_time_us"`
	Skipped  bool  `json:"skipped,omitempty"`
	// TimelineVersion is the timeline version that produced the event.
	TimelineVersion int64 `json:"timeline_version"`
}

// HourChanged is the payload of a world.time.hour event.
type HourChanged struct {
	// Version of this payload; currently 1.
	Version         int    `json:"version"`
	World           string `json:"world"`
	Day             int    `json:"day"`
	Hour            int    `json:"hour"`
	Phase           string `json:"phase"`
	GameTime        int64  `json:"game_time_us"`
	Skipped         bool   `json:"skipped,omitempty"`
	TimelineVersion int64  `json:"timeline_version"`
}

// DayChanged is the payload of a world.time.day event.
type DayChanged struct {
	// Version of this payload; currently 1.
	Version         int    `json:"version"`
	World           string `json:"world"`
	Day             int    `json:"day"`
	Weekday         int    `json:"weekday"`
	Year            int    `json:"year"`
	DayOfYear       int    `json:"day_of_year"`
	GameTime        int64  `json:"game_time_us"`
	Skipped         bool   `json:"skipped,omitempty"`
	TimelineVersion int64  `json:"timeline_version"`
}

// TimeSet is the payload of a world.time.set event: the time was set
// backwards (forward sets are skips and emit every boundary crossed).
type TimeSet struct {
	// Version of this payload; currently 1.
	Version         int    `json:"version"`
	World           string `json:"world"`
	From            int64  `json:"from_us"`
	To              int64  `json:"to_us"`
	Day             int    `json:"day"`
	Clock           string `json:"time_string"`
	Phase           string `json:"phase"`
	TimelineVersion int64  `json:"timeline_version"`
}
