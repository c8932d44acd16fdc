package audio

import (
	"cmp"
	"fmt"
	"math"
	"time"
)

// Resolution is what a voice limit does when a new voice would exceed it.
// The zero value is [RejectNew].
type Resolution uint8

const (
	// RejectNew keeps the playing voices and refuses the new one.
	RejectNew Resolution = iota
	// StopOldest stops the voice that started first.
	StopOldest
	// StopLowestPriority stops the lowest-priority voice, unless the new
	// voice's priority is lower still (then the new one is refused).
	StopLowestPriority
	// StopFarthest stops the voice farthest from its listener, unless the
	// new voice is farther still.
	StopFarthest
	// StopQuietest stops the quietest voice, unless the new one is
	// quieter still.
	StopQuietest
)

var resolutionNames = [...]string{"reject_new", "stop_oldest", "stop_lowest_priority", "stop_farthest", "stop_quietest"}

func (r Resolution) String() string {
	if int(r) < len(resolutionNames) {
		return resolutionNames[r]
	}
	return fmt.Sprintf("Resolution(%d)", r)
}

// Limit bounds the voices of one group (a sound, or sounds that share a
// Voice.Group). Max 0 means no count limit (cooldowns still apply).
//
// When Virtualize is set, a voice that is refused or stolen is not dropped
// but becomes virtual: it keeps its place in time and resumes from its
// elapsed position when a slot frees, unless its Duration ran out first.
// A NeverSteal voice that finds no slot is always queued as virtual.
//
// Cooldown refuses a voice that starts within Cooldown of the group's last
// start; with CooldownRadius > 0 only starts within that distance of the
// new voice's Position count (a spatial cooldown: a far-away player's
// trigger does not silence yours).
type Limit struct {
	Group          string
	Max            int
	Resolution     Resolution
	Virtualize     bool
	Cooldown       time.Duration
	CooldownRadius float64
}

// Vec3 is a world position.
type Vec3 struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
	Z float64 `json:"z"`
}

func (a Vec3) dist2(b Vec3) float64 {
	dx, dy, dz := a.X-b.X, a.Y-b.Y, a.Z-b.Z
	return dx*dx + dy*dy + dz*dz
}

func (a Vec3) finite() bool {
	return !math.IsNaN(a.X+a.Y+a.Z) && !math.IsInf(a.X+a.Y+a.Z, 0)
}

// Voice is a sound instance to play. The zero Voice is invalid (it has no
// ID).
type Voice struct {
	// ID is unique among the pool's voices.
	ID string `json:"id"`
	// Sound names what to play (an asset, clip or event name).
	Sound string `json:"sound"`
	// Group selects the Limit; "" means Sound.
	Group string `json:"group,omitempty"`
	// Bus the voice plays on (a [Director] checks it against its mixer).
	Bus string `json:"bus,omitempty"`
	// Emitter is the entity the voice plays on, if any.
	Emitter string `json:"emitter,omitempty"`
	// Priority: higher is more important.
	Priority int `json:"priority,omitempty"`
	// Distance from the nearest listener, ≥ 0.
	Distance float64 `json:"distance,omitempty"`
	// Position is where it plays, for spatial cooldowns.
	Position Vec3 `json:"position"`
	// Volume is the voice's own linear gain in [0, 1].
	Volume float64 `json:"volume"`
	// NeverSteal marks narrative-critical lines: never stolen, queued as
	// virtual rather than refused.
	NeverSteal bool `json:"never_steal,omitempty"`
	// Duration is how long it plays; 0 means until stopped (a loop). A
	// voice whose Duration has passed ends by itself.
	Duration time.Duration `json:"duration,omitempty"`
}

// VoiceState is where a tracked voice is.
type VoiceState uint8

const (
	Playing VoiceState = iota + 1
	Virtual
)

// Outcome is what Play did with a new voice.
type Outcome uint8

const (
	// Played: the voice plays.
	Played Outcome = iota + 1
	// Queued: the voice is virtual and resumes when a slot frees.
	Queued
	// Rejected: the limit refused it.
	Rejected
	// CooledDown: the group's cooldown refused it.
	CooledDown
)

var outcomeNames = [...]string{Played: "played", Queued: "queued", Rejected: "rejected", CooledDown: "cooled_down"}

func (o Outcome) String() string {
	if int(o) < len(outcomeNames) && outcomeNames[o] != "" {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", o)
}

// VoiceEventKind says what happened to a voice as a side effect of Play,
// Stop or Advance.
type VoiceEventKind uint8

const (
	// VoiceStolen: a playing voice was stopped for a new one.
	VoiceStolen VoiceEventKind = iota + 1
	// VoiceVirtualized: a playing voice became virtual for a new one.
	VoiceVirtualized
	// VoiceResumed: a virtual voice took a freed slot, at Offset.
	VoiceResumed
	// VoiceEnded: a voice reached the end of its Duration (playing or
	// virtual) or was stopped.
	VoiceEnded
)

// VoiceEvent is a change to a voice other than the one being played.
type VoiceEvent struct {
	Kind  VoiceEventKind
	Voice Voice
	// At is when it happened: for a voice that reached the end of its
	// Duration, that end (which may be before the Advance that noticed).
	At time.Time
	// Offset is how far into the sound a resumed voice starts.
	Offset time.Duration
}

// VoicesOptions configures a [Voices] pool. The zero value has no limits
// and tracks at most DefaultMaxVoices voices.
type VoicesOptions struct {
	Limits []Limit
	// MaxVoices bounds the voices tracked (playing and virtual); 0 means
	// DefaultMaxVoices. Play returns ErrTooManyVoices beyond it.
	MaxVoices int
	// MaxCooldownStarts bounds the starts remembered per group for
	// cooldowns; 0 means 256. When full, the oldest is forgotten.
	MaxCooldownStarts int
}

// DefaultMaxVoices is the default bound on tracked voices.
const DefaultMaxVoices = 4096

// VoiceStats counts what a pool did.
type VoiceStats struct {
	Playing, Virtual                                   int
	Played, Queued, Rejected, CooledDown               uint64
	Stolen, Virtualized, Resumed, Ended, ExpiredQueued uint64
}

type voice struct {
	Voice
	start time.Time
	state VoiceState
	group int // index into groups, -1 when unlimited
	tag   int // owner's annotation (a Director's bus index)
}

type group struct {
	limit   Limit
	playing int
	starts  []cooldownStart
}

type cooldownStart struct {
	at  time.Time
	pos Vec3
}

// Voices is a voice-concurrency arbiter: it tracks the voices of a world,
// applies per-group limits with their resolution rules, cooldowns and
// virtual voices, and reports which voices to stop and resume. Tie-breaks
// are total and deterministic: see [Voices.Play].
//
// Voices is not safe for concurrent use; a [Director] serialises access to
// its own. Create one with [NewVoices].
type Voices struct {
	opts   VoicesOptions
	groups []group
	gidx   map[string]int
	voices []voice
	byID   map[string]int
	stats  VoiceStats
}

// NewVoices validates opts: a repeated group gives ErrDuplicate; negative
// Max, Cooldown or CooldownRadius and unknown resolutions a *ValueError.
func NewVoices(opts VoicesOptions) (*Voices, error) {
	if opts.MaxVoices < 0 || opts.MaxCooldownStarts < 0 {
		return nil, invalid("MaxVoices", opts.MaxVoices)
	}
	if opts.MaxVoices == 0 {
		opts.MaxVoices = DefaultMaxVoices
	}
	if opts.MaxCooldownStarts == 0 {
		opts.MaxCooldownStarts = 256
	}
	v := &Voices{opts: opts, gidx: map[string]int{}, byID: map[string]int{}}
	for _, l := range opts.Limits {
		switch {
		case l.Group == "":
			return nil, invalid("limit group", l.Group)
		case l.Max < 0:
			return nil, invalid("max of limit "+l.Group, l.Max)
		case l.Cooldown < 0:
			return nil, invalid("cooldown of limit "+l.Group, l.Cooldown)
		case !(l.CooldownRadius >= 0) || math.IsInf(l.CooldownRadius, 1):
			return nil, invalid("cooldown radius of limit "+l.Group, l.CooldownRadius)
		case int(l.Resolution) >= len(resolutionNames):
			return nil, invalid("resolution of limit "+l.Group, l.Resolution)
		}
		if _, dup := v.gidx[l.Group]; dup {
			return nil, fmt.Errorf("%w: limit %q", ErrDuplicate, l.Group)
		}
		v.gidx[l.Group] = len(v.groups)
		v.groups = append(v.groups, group{limit: l})
	}
	return v, nil
}

func checkVoice(v Voice) error {
	switch {
	case v.ID == "":
		return invalid("voice ID", v.ID)
	case CheckGain("voice volume", v.Volume) != nil:
		return invalid("volume of voice "+v.ID, v.Volume)
	case !(v.Distance >= 0) || math.IsInf(v.Distance, 1):
		return invalid("distance of voice "+v.ID, v.Distance)
	case v.Duration < 0:
		return invalid("duration of voice "+v.ID, v.Duration)
	case !v.Position.finite():
		return invalid("position of voice "+v.ID, v.Position)
	}
	return nil
}

// victimCmp orders stealable voices: the first in this order is stolen.
// The resolution's own key comes first, then the total tie-break: lower
// priority, farther, older start, smaller ID.
func victimCmp(res Resolution, a, b *voice) int {
	var c int
	switch res {
	case StopOldest:
		c = a.start.Compare(b.start)
	case StopFarthest:
		c = cmp.Compare(b.Distance, a.Distance)
	case StopQuietest:
		c = cmp.Compare(a.Volume, b.Volume)
	}
	if c != 0 {
		return c
	}
	if c = cmp.Compare(a.Priority, b.Priority); c != 0 {
		return c
	}
	if c = cmp.Compare(b.Distance, a.Distance); c != 0 {
		return c
	}
	if c = a.start.Compare(b.start); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// resumeCmp orders virtual voices: the first resumes first. Never-steal
// lines, then higher priority, nearer, earlier start, smaller ID.
func resumeCmp(a, b *voice) int {
	if a.NeverSteal != b.NeverSteal {
		if a.NeverSteal {
			return -1
		}
		return 1
	}
	if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Distance, b.Distance); c != 0 {
		return c
	}
	if c := a.start.Compare(b.start); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// newWins reports whether a new voice may take the victim's slot.
func newWins(res Resolution, nv, victim *voice) bool {
	if nv.NeverSteal {
		return true
	}
	switch res {
	case RejectNew:
		return false
	case StopLowestPriority:
		return nv.Priority >= victim.Priority
	case StopFarthest:
		return nv.Distance <= victim.Distance
	case StopQuietest:
		return nv.Volume >= victim.Volume
	}
	return true
}

// Play starts v at now under its group's limit, appending what happened to
// other voices to events, and returns the new voice's outcome and the
// events.
//
// When the group is full: NeverSteal voices are never stolen; the victim is
// the first stealable playing voice in the resolution's order, ties broken
// by lower priority, then farther, then older start, then smaller ID. The
// new voice takes its slot unless the resolution says the new voice loses
// (RejectNew; a lower priority, farther or quieter new voice), or no voice
// is stealable; a NeverSteal newcomer always wins a stealable slot. A voice
// that loses its slot (victim or newcomer) is stopped, or made virtual
// when the limit has Virtualize (NeverSteal newcomers always are).
//
// Bad voices give a *ValueError, a repeated ID ErrDuplicate, a full pool
// ErrTooManyVoices.
func (p *Voices) Play(v Voice, now time.Time, events []VoiceEvent) (Outcome, []VoiceEvent, error) {
	return p.play(v, now, events, -1)
}

func (p *Voices) play(v Voice, now time.Time, events []VoiceEvent, tag int) (Outcome, []VoiceEvent, error) {
	if err := checkVoice(v); err != nil {
		return 0, events, err
	}
	if _, dup := p.byID[v.ID]; dup {
		return 0, events, fmt.Errorf("%w: voice %q", ErrDuplicate, v.ID)
	}
	if len(p.voices) >= p.opts.MaxVoices {
		return 0, events, fmt.Errorf("%w: %d tracked", ErrTooManyVoices, len(p.voices))
	}
	name := v.Group
	if name == "" {
		name = v.Sound
	}
	gi := -1
	if i, ok := p.gidx[name]; ok {
		gi = i
	}
	nv := voice{Voice: v, start: now, group: gi, tag: tag}
	if gi < 0 {
		p.add(nv, Playing)
		p.stats.Played++
		return Played, events, nil
	}
	g := &p.groups[gi]
	if p.cooling(g, v, now) {
		p.stats.CooledDown++
		return CooledDown, events, nil
	}
	if g.limit.Max == 0 || g.playing < g.limit.Max {
		p.add(nv, Playing)
		p.stats.Played++
		return Played, events, nil
	}
	victim := -1
	for i := range p.voices {
		c := &p.voices[i]
		if c.group != gi || c.state != Playing || c.NeverSteal {
			continue
		}
		if victim < 0 || victimCmp(g.limit.Resolution, c, &p.voices[victim]) < 0 {
			victim = i
		}
	}
	if victim < 0 || !newWins(g.limit.Resolution, &nv, &p.voices[victim]) {
		if g.limit.Virtualize || v.NeverSteal {
			p.add(nv, Virtual)
			p.stats.Queued++
			return Queued, events, nil
		}
		p.stats.Rejected++
		return Rejected, events, nil
	}
	old := p.voices[victim].Voice
	if g.limit.Virtualize {
		p.voices[victim].state = Virtual
		g.playing--
		p.stats.Virtualized++
		events = append(events, VoiceEvent{Kind: VoiceVirtualized, Voice: old, At: now})
	} else {
		p.remove(victim)
		p.stats.Stolen++
		events = append(events, VoiceEvent{Kind: VoiceStolen, Voice: old, At: now})
	}
	p.add(nv, Playing)
	p.stats.Played++
	return Played, events, nil
}

func (p *Voices) cooling(g *group, v Voice, now time.Time) bool {
	cd := g.limit.Cooldown
	if cd <= 0 {
		return false
	}
	// Forget starts older than the cooldown (kept in start order).
	n := 0
	for n < len(g.starts) && now.Sub(g.starts[n].at) >= cd {
		n++
	}
	if n > 0 {
		g.starts = append(g.starts[:0], g.starts[n:]...)
	}
	r2 := g.limit.CooldownRadius * g.limit.CooldownRadius
	for _, s := range g.starts {
		if g.limit.CooldownRadius == 0 || s.pos.dist2(v.Position) <= r2 {
			return true
		}
	}
	if len(g.starts) >= p.opts.MaxCooldownStarts {
		g.starts = append(g.starts[:0], g.starts[1:]...)
	}
	g.starts = append(g.starts, cooldownStart{at: now, pos: v.Position})
	return false
}

func (p *Voices) add(v voice, s VoiceState) {
	v.state = s
	if s == Playing && v.group >= 0 {
		p.groups[v.group].playing++
	}
	p.byID[v.ID] = len(p.voices)
	p.voices = append(p.voices, v)
}

// remove drops voice i (swap with the last) and frees its slot.
func (p *Voices) remove(i int) {
	v := &p.voices[i]
	if v.state == Playing && v.group >= 0 {
		p.groups[v.group].playing--
	}
	delete(p.byID, v.ID)
	last := len(p.voices) - 1
	if i != last {
		p.voices[i] = p.voices[last]
		p.byID[p.voices[i].ID] = i
	}
	p.voices[last] = voice{}
	p.voices = p.voices[:last]
}

// fill resumes virtual voices of group gi while it has free slots.
func (p *Voices) fill(gi int, now time.Time, events []VoiceEvent) []VoiceEvent {
	if gi < 0 {
		return events
	}
	g := &p.groups[gi]
	for g.limit.Max == 0 || g.playing < g.limit.Max {
		best := -1
		for i := range p.voices {
			c := &p.voices[i]
			if c.group == gi && c.state == Virtual && (best < 0 || resumeCmp(c, &p.voices[best]) < 0) {
				best = i
			}
		}
		if best < 0 {
			return events
		}
		b := &p.voices[best]
		b.state = Playing
		g.playing++
		p.stats.Resumed++
		events = append(events, VoiceEvent{Kind: VoiceResumed, Voice: b.Voice, Offset: now.Sub(b.start), At: now})
	}
	return events
}

// Stop ends a voice (playing or virtual) and resumes virtual voices into
// its slot; ErrUnknownVoice when there is no such voice.
func (p *Voices) Stop(id string, now time.Time, events []VoiceEvent) ([]VoiceEvent, error) {
	i, ok := p.byID[id]
	if !ok {
		return events, fmt.Errorf("%w: %q", ErrUnknownVoice, id)
	}
	gi := p.voices[i].group
	events = append(events, VoiceEvent{Kind: VoiceEnded, Voice: p.voices[i].Voice, At: now})
	p.remove(i)
	p.stats.Ended++
	return p.fill(gi, now, events), nil
}

// Advance ends voices whose Duration has passed at now (virtual ones too:
// they kept time while silent) and resumes virtual voices into freed
// slots. It allocates nothing when events has room.
func (p *Voices) Advance(now time.Time, events []VoiceEvent) []VoiceEvent {
	freed := false
	for i := 0; i < len(p.voices); {
		v := &p.voices[i]
		if v.Duration > 0 && now.Sub(v.start) >= v.Duration {
			if v.state == Virtual {
				p.stats.ExpiredQueued++
			} else {
				freed = true
			}
			p.stats.Ended++
			events = append(events, VoiceEvent{Kind: VoiceEnded, Voice: v.Voice, At: v.start.Add(v.Duration)})
			p.remove(i)
			continue
		}
		i++
	}
	if freed {
		for gi := range p.groups {
			events = p.fill(gi, now, events)
		}
	}
	return events
}

// State returns a voice's state, or 0 when the pool does not hold it.
func (p *Voices) State(id string) VoiceState {
	if i, ok := p.byID[id]; ok {
		return p.voices[i].state
	}
	return 0
}

// Playing returns how many voices of a group play now.
func (p *Voices) Playing(group string) int {
	if i, ok := p.gidx[group]; ok {
		return p.groups[i].playing
	}
	n := 0
	for i := range p.voices {
		if p.voices[i].state == Playing && p.voices[i].group < 0 && cmp.Or(p.voices[i].Group, p.voices[i].Sound) == group {
			n++
		}
	}
	return n
}

// Len returns how many voices the pool tracks (playing and virtual).
func (p *Voices) Len() int { return len(p.voices) }

// Stats returns the pool's counts.
func (p *Voices) Stats() VoiceStats {
	s := p.stats
	s.Playing, s.Virtual = 0, 0
	for i := range p.voices {
		if p.voices[i].state == Playing {
			s.Playing++
		} else {
			s.Virtual++
		}
	}
	return s
}
