package eventbus

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"time"
)

// Event is the envelope every transport carries. Only Topic and Payload are
// the publisher's business in the common case: Publish fills in ID, Time and
// Source when they are zero.
//
// The bus takes ownership of Payload and Headers when the event is published:
// the publisher must not modify them afterwards, and handlers must treat them
// as read-only (several subscribers may share them).
type Event struct {
	// ID is unique and sortable (ULID layout: 48-bit millisecond time, then
	// 80 bits that increase monotonically within a process). Publish assigns
	// one when it is zero; a publisher may set it to make retried publishes
	// recognisable to subscribers with a dedup window.
	ID ID
	// Topic is the dot-separated subject, e.g. "world.time.dawn". Publish
	// sets it from its topic argument.
	Topic string
	// Type names the payload's schema, e.g. "worldtime.PhaseChanged". The
	// typed helpers set it to the Go or protobuf message name.
	Type string
	// Source names the publishing instance (Options.Source by default).
	Source string
	// Time is when the event happened; Publish sets it to the current time
	// when zero.
	Time time.Time
	// Key is an optional entity key (player ID, NPC ID). Events with the same
	// topic and key reach each subscriber in publish order even when the
	// subscription runs several handlers concurrently, and KeepLatest
	// conflates by it.
	Key string
	// Headers carry optional metadata (trace IDs, dead-letter reasons).
	Headers map[string]string
	// Payload is the encoded body: JSON by default, protobuf for
	// proto.Message types (see Publish and Handle).
	Payload []byte
}

// Header returns the value of header k, or "".
func (e *Event) Header(k string) string { return e.Headers[k] }

// ID is a 128-bit sortable event identifier in the ULID layout. Its String
// form is 26 characters of Crockford base32, which sort the same way as the
// IDs themselves. The zero ID means "unset".
type ID [16]byte

// IsZero reports whether id is the zero (unset) ID.
func (id ID) IsZero() bool { return id == ID{} }

// Time returns the millisecond timestamp embedded in id.
func (id ID) Time() time.Time {
	ms := uint64(id[0])<<40 | uint64(id[1])<<32 | uint64(id[2])<<24 |
		uint64(id[3])<<16 | uint64(id[4])<<8 | uint64(id[5])
	return time.UnixMilli(int64(ms))
}

// Compare returns -1, 0 or +1 as id sorts before, equal to or after o.
func (id ID) Compare(o ID) int {
	a0, b0 := binary.BigEndian.Uint64(id[:8]), binary.BigEndian.Uint64(o[:8])
	if a0 != b0 {
		if a0 < b0 {
			return -1
		}
		return 1
	}
	a1, b1 := binary.BigEndian.Uint64(id[8:]), binary.BigEndian.Uint64(o[8:])
	switch {
	case a1 < b1:
		return -1
	case a1 > b1:
		return 1
	}
	return 0
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// String returns the 26-character Crockford base32 form of id.
func (id ID) String() string {
	var b [26]byte
	id.encode(&b)
	return string(b[:])
}

// AppendText appends the text form of id to b.
func (id ID) AppendText(b []byte) ([]byte, error) {
	var t [26]byte
	id.encode(&t)
	return append(b, t[:]...), nil
}

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) { return id.AppendText(make([]byte, 0, 26)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := parseID(b)
	if err != nil {
		return err
	}
	*id = v
	return nil
}

func (id ID) encode(dst *[26]byte) {
	hi := binary.BigEndian.Uint64(id[:8])
	lo := binary.BigEndian.Uint64(id[8:])
	// 128 bits → 26 five-bit groups, most significant first; the first group
	// holds only the top 3 bits.
	for i := 25; i >= 0; i-- {
		dst[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
}

// ErrInvalidID is returned by ParseID for text that is not a valid ID.
var ErrInvalidID = errors.New("eventbus: invalid event ID")

var crockfordDec = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := 0; i < len(crockford); i++ {
		c := crockford[i]
		t[c] = byte(i)
		if c >= 'A' && c <= 'Z' {
			t[c+'a'-'A'] = byte(i)
		}
	}
	// Crockford's aliases.
	for _, p := range [][2]byte{{'O', 0}, {'o', 0}, {'I', 1}, {'i', 1}, {'L', 1}, {'l', 1}} {
		t[p[0]] = p[1]
	}
	return t
}()

// ParseID parses the 26-character text form of an ID.
func ParseID(s string) (ID, error) { return parseID([]byte(s)) }

func parseID(s []byte) (ID, error) {
	if len(s) != 26 {
		return ID{}, ErrInvalidID
	}
	var hi, lo uint64
	for i, c := range s {
		v := crockfordDec[c]
		if v == 0xff || (i == 0 && v > 7) {
			return ID{}, ErrInvalidID
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(v)
	}
	var id ID
	binary.BigEndian.PutUint64(id[:8], hi)
	binary.BigEndian.PutUint64(id[8:], lo)
	return id, nil
}

// idGen makes IDs that increase strictly within a process: 48-bit
// milliseconds (never moving backwards), a 16-bit random node tag and a
// 64-bit counter that starts at a random value.
type idGen struct {
	lastMs atomic.Uint64
	ctr    atomic.Uint64
	node   uint16
}

func newIDGen() *idGen {
	var b [10]byte
	_, _ = rand.Read(b[:])
	g := &idGen{node: binary.BigEndian.Uint16(b[:2])}
	g.ctr.Store(binary.BigEndian.Uint64(b[2:]) >> 1) // leave 2^63 before wrapping
	return g
}

func (g *idGen) next(now time.Time) ID {
	ms := uint64(now.UnixMilli()) & (1<<48 - 1)
	for {
		last := g.lastMs.Load()
		if ms <= last {
			ms = last
			break
		}
		if g.lastMs.CompareAndSwap(last, ms) {
			break
		}
	}
	c := g.ctr.Add(1)
	var id ID
	binary.BigEndian.PutUint64(id[:8], ms<<16|uint64(g.node))
	binary.BigEndian.PutUint64(id[8:], c)
	return id
}

var defaultIDs = newIDGen()

// NewID returns a new unique, sortable ID.
func NewID() ID { return defaultIDs.next(time.Now()) }

// Position says where a replay starts. The zero Position means "from the
// oldest retained event" for History and "only events published from now on"
// for SubscribeOptions.From.
type Position struct {
	kind posKind
	id   ID
	t    time.Time
}

type posKind uint8

const (
	posNone posKind = iota
	posStart
	posAfterID
	posTime
)

// FromStart is the position of the oldest event the transport still retains.
func FromStart() Position { return Position{kind: posStart} }

// AfterID is the position just after the event with the given ID: replay
// yields the events published after it. When that event is no longer
// retained, replay starts at the first retained event whose ID sorts after
// id.
func AfterID(id ID) Position { return Position{kind: posAfterID, id: id} }

// FromTime is the position of the first event whose Time is at or after t.
func FromTime(t time.Time) Position { return Position{kind: posTime, t: t} }

// IsZero reports whether p is the zero Position.
func (p Position) IsZero() bool { return p.kind == posNone }

// IsStart reports whether p is FromStart().
func (p Position) IsStart() bool { return p.kind == posStart }

// AfterIDValue returns the ID of an AfterID position.
func (p Position) AfterIDValue() (ID, bool) { return p.id, p.kind == posAfterID }

// TimeValue returns the time of a FromTime position.
func (p Position) TimeValue() (time.Time, bool) { return p.t, p.kind == posTime }

// String describes p.
func (p Position) String() string {
	switch p.kind {
	case posStart:
		return "start"
	case posAfterID:
		return "after " + p.id.String()
	case posTime:
		return "from " + p.t.Format(time.RFC3339Nano)
	}
	return "now"
}

// Includes reports whether ev lies at or after p (for AfterID: after the
// given ID in ID order). Transports use it to filter replays.
func (p Position) Includes(ev *Event) bool {
	switch p.kind {
	case posAfterID:
		return ev.ID.Compare(p.id) > 0
	case posTime:
		return !ev.Time.Before(p.t)
	}
	return true
}
