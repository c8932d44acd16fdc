package indicators

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"
)

// ID identifies an indicator within its [Set]. IDs start at 1 and
// increase; they are never reused by a set, also not after Clear.
type ID uint64

// Indicator is one thing to draw attention to, as the game adds it. The
// zero value is an EdgeGlow at the origin with priority 1 that stays until
// removed.
type Indicator struct {
	// Target is the world location; it must be finite and within
	// [MaxCoord].
	Target Vec3
	Kind   Kind
	// Priority scales intensity and ranking (higher is more important);
	// zero means 1. It must lie in [0, 100].
	Priority float64
	// Duration, if positive, is how long the indicator lives; it then
	// fades out and leaves the set. Zero means until removed.
	Duration time.Duration
	// Meaning, if set, gives the indicator its palette colour and shape.
	Meaning Meaning
	// Inactive starts a Contextual indicator hidden; see
	// [Set.SetActive]. Other kinds ignore it.
	Inactive bool
	// Sectors, if positive, snaps the indicator's on-screen bearing to
	// that many sectors (8 or 16, say; see [Quantize]) while it is off
	// screen, for targets the player should know only roughly. It must
	// not exceed 360.
	Sectors int
}

// Budget bounds attention: how many indicators show at once, and how they
// avoid flicker. The zero value means the defaults listed per field.
type Budget struct {
	// Max is the most indicators shown at once (fading out does not
	// count); zero means 8.
	Max int
	// MaxPerRegion is the most shown in one [Region]; zero means 3.
	MaxPerRegion int
	// Enter is the score an indicator must reach to be shown and Exit the
	// score below which a shown one is hidden (score = priority × (1 −
	// distance/MaxDistance)). Exit must not exceed Enter; the gap is the
	// hysteresis. Zero means any positive score.
	Enter, Exit float64
	// MinDwell is the least time an indicator stays shown, or hidden
	// after it was shown, before the budget or thresholds may change
	// that, and the least time a shown Contextual indicator keeps its
	// style (glow or marker); zero means 500 ms. NoDwell turns this off.
	MinDwell time.Duration
	NoDwell  bool
	// MergeRadius merges an indicator into a higher-ranked one of the
	// same style drawn closer than this many pixels; the survivor reports
	// the count in State.Merged. Zero means 2 × the drawn size; NoMerge
	// turns merging off.
	MergeRadius float64
	NoMerge     bool
}

// Guide configures the MinionNPC guide: a point that walks toward the
// highest-priority MinionNPC indicator, whose position each [Frame]
// reports so the game can place its guide character there. The zero value
// is disabled.
type Guide struct {
	Enabled bool
	// Speed in world units per second; zero means 100.
	Speed float64
	// Start is where the guide begins.
	Start Vec3
}

// Options configures a [Set]. The zero value means the original system's
// defaults: fade 0.5 s, glow 0.3 in (1.0, 0.8, 0.2), 20 px markers and
// margins, 5,000 units max distance, edge glows and markers on, the guide
// off.
type Options struct {
	// Now is the clock; nil means time.Now. Fades, pulses, expiry, dwell
	// and the guide run on it.
	Now        func() time.Time
	Appearance Appearance
	Limits     Limits
	// Area is where off-screen indicators are clamped; the zero value
	// means a rectangle with margins of Appearance.Size on every side.
	Area    Area
	Budget  Budget
	Profile Profile
	// DisableEdgeGlow and DisableScreenEdge hide those kinds (the
	// original's per-kind enable flags; Contextual is always on).
	DisableEdgeGlow   bool
	DisableScreenEdge bool
	Guide             Guide
}

// State is one indicator as a frame draws it: a plain value, which a
// renderer reads and may keep.
type State struct {
	ID      ID      `json:"id"`
	Kind    Kind    `json:"kind"`
	Style   Style   `json:"style"`
	Shape   Shape   `json:"shape"`
	Meaning Meaning `json:"meaning"`
	// X, Y is the centre in screen pixels (Y down): on the target, or on
	// the safe area's boundary when Clamped.
	X float64 `json:"x"`
	Y float64 `json:"y"`
	// Angle is the bearing toward the target; see [Projection.Angle].
	Angle   float64 `json:"angle"`
	Region  Region  `json:"region"`
	Clamped bool    `json:"clamped"`
	Behind  bool    `json:"behind"`
	// Alpha in [0, 1] is fade × pulse × the fade near MaxDistance.
	Alpha float64 `json:"alpha"`
	// Intensity in [0, Limits.MaxIntensity] is GlowIntensity × (1 −
	// distance/MaxDistance) × priority, clamped.
	Intensity float64 `json:"intensity"`
	Color     Color   `json:"color"`
	// Size is the marker size, or the glow's thickness, in pixels; Width
	// is an edge glow's length along the edge (Size otherwise).
	Size  float64 `json:"size"`
	Width float64 `json:"width"`
	// Distance from the camera in world units.
	Distance float64 `json:"distance"`
	// Merged counts the indicators folded into this one.
	Merged int `json:"merged,omitempty"`
	// Leaving reports that the indicator is fading out; it does not
	// count against the budget.
	Leaving bool `json:"leaving,omitempty"`
}

// GuideState is the guide's place in a frame; the zero value is an
// inactive guide.
type GuideState struct {
	Active   bool `json:"active"` // the guide is enabled
	Position Vec3 `json:"position"`
	// Target is the MinionNPC indicator it walks toward; 0 for none.
	Target ID `json:"target"`
}

// Frame is one frame's output, returned by [Set.Frame]. Its States share
// storage with the dst slice passed in, so the caller owns them until it
// passes that storage to the next Frame call.
type Frame struct {
	// States are the indicators to draw, ordered by ID. The slice is the
	// dst passed to [Set.Frame], grown as needed.
	States []State    `json:"states"`
	Guide  GuideState `json:"guide"`
	At     time.Time  `json:"-"`
}

// Stats is a snapshot of a set's counters, from [Set.Stats].
type Stats struct {
	Indicators int    // in the set
	Shown      int    // shown in the last frame (not counting fading out)
	Merged     int    // merged into others in the last frame
	Frames     uint64 // frames computed
}

// Set is the indicators for one viewer (one local player): it keeps the
// state that fades, expiry, dwell and the guide need, and turns targets,
// a camera and a viewport into a [Frame]. Create it with [New]; the zero
// value is not usable. A Set is safe for concurrent use; it starts no
// goroutines and holds nothing to close.
type Set struct {
	mu      sync.Mutex
	now     func() time.Time
	epoch   time.Time
	app     Appearance
	lim     Limits
	area    Area
	bud     Budget
	prof    Profile
	colours [numMeanings]Color
	noGlow  bool
	noEdge  bool

	nextID  ID
	entries []entry
	index   map[ID]int
	keys    map[string]ID // Apply's keys
	cands   []int32
	sel     []int32

	guide     Guide
	guidePos  Vec3
	lastFrame time.Duration
	framed    bool

	stats Stats
}

type entry struct {
	id       ID
	ind      Indicator
	priority float64
	added    time.Duration // since the set's epoch
	changed  time.Duration // last shown↔hidden change
	fadeAt   time.Duration
	fadeFrom float64
	styled   time.Duration // last style change (Contextual)
	shown    bool
	ever     bool // has been shown
	expired  bool

	// Per-frame scratch.
	pl     Placement
	dist   float64
	score  float64
	style  Style
	behind bool
	locked bool
	pick   bool
	merged int
}

// New validates opts and returns an empty set. Errors wrap
// [ErrBadOptions], or are a *[SubtletyError] for an appearance that
// breaks the limits.
func New(opts Options) (*Set, error) {
	lim := opts.Limits.withDefaults()
	if err := lim.validate(); err != nil {
		return nil, err
	}
	app := opts.Appearance.withDefaults()
	if err := app.validate(lim); err != nil {
		return nil, err
	}
	area := opts.Area
	if area == (Area{}) {
		area = Uniform(app.Size)
	}
	if _, _, _, _, err := area.Rect(Viewport{W: 1e6, H: 1e6}); err != nil {
		return nil, err
	}
	b := opts.Budget
	if b.Max == 0 {
		b.Max = 8
	}
	if b.MaxPerRegion == 0 {
		b.MaxPerRegion = 3
	}
	if b.MinDwell == 0 {
		b.MinDwell = 500 * time.Millisecond
	}
	if b.NoDwell {
		b.MinDwell = 0
	}
	if b.Max < 0 || b.MaxPerRegion < 0 || b.MinDwell < 0 || !finite(b.Enter) || !finite(b.Exit) ||
		b.Exit < 0 || b.Exit > b.Enter || !finite(b.MergeRadius) || b.MergeRadius < 0 {
		return nil, fmt.Errorf("%w: budget %+v", ErrBadOptions, opts.Budget)
	}
	g := opts.Guide
	if g.Speed == 0 {
		g.Speed = 100
	}
	if !finite(g.Speed) || g.Speed < 0 || ValidTarget(g.Start) != nil {
		return nil, fmt.Errorf("%w: guide %+v", ErrBadOptions, opts.Guide)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	s := &Set{
		now: now, app: app, lim: lim, area: area, bud: b, guide: g, guidePos: g.Start,
		noGlow: opts.DisableEdgeGlow, noEdge: opts.DisableScreenEdge,
		index: make(map[ID]int),
	}
	s.epoch = now()
	if err := s.SetProfile(opts.Profile); err != nil {
		return nil, err
	}
	return s, nil
}

// SetProfile changes the accessibility profile from the next frame on. Call
// it from a settings.changed handler. The error wraps [ErrBadOptions].
func (s *Set) SetProfile(p Profile) error {
	p = p.withDefaults()
	if err := p.validate(); err != nil {
		return err
	}
	c := colours(s.app, p)
	s.mu.Lock()
	s.prof, s.colours = p, c
	s.mu.Unlock()
	return nil
}

func (ind *Indicator) validate() (priority float64, err error) {
	if err := ValidTarget(ind.Target); err != nil {
		return 0, err
	}
	priority = ind.Priority
	if priority == 0 {
		priority = 1
	}
	if !(priority >= 0 && priority <= 100) || ind.Kind >= numKinds || ind.Meaning >= numMeanings || ind.Duration < 0 ||
		ind.Sectors < 0 || ind.Sectors > 360 {
		return 0, fmt.Errorf("%w: indicator %+v", ErrBadOptions, *ind)
	}
	return priority, nil
}

// Add adds an indicator and returns its ID. Errors wrap [ErrBadTarget] or
// [ErrBadOptions].
func (s *Set) Add(ind Indicator) (ID, error) {
	pri, err := ind.validate()
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	id := s.nextID
	s.index[id] = len(s.entries)
	s.entries = append(s.entries, entry{id: id, ind: ind, priority: pri, added: s.now().Sub(s.epoch)})
	return id, nil
}

// Remove removes an indicator at once, without a fade. The error wraps
// [ErrNotFound].
func (s *Set) Remove(id ID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[id]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	s.removeAt(i)
	return nil
}

func (s *Set) removeAt(i int) {
	delete(s.index, s.entries[i].id)
	last := len(s.entries) - 1
	if i != last {
		s.entries[i] = s.entries[last]
		s.index[s.entries[i].id] = i
	}
	s.entries[last] = entry{}
	s.entries = s.entries[:last]
}

// UpdateLocation moves an indicator's target. Errors wrap [ErrNotFound]
// or [ErrBadTarget].
func (s *Set) UpdateLocation(id ID, target Vec3) error {
	if err := ValidTarget(target); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[id]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	s.entries[i].ind.Target = target
	return nil
}

// SetActive shows (true) or hides (false) a Contextual indicator, with the
// usual fades; the condition it stands for is the game's. The error wraps
// [ErrNotFound].
func (s *Set) SetActive(id ID, active bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.index[id]
	if !ok {
		return fmt.Errorf("%w: %d", ErrNotFound, id)
	}
	s.entries[i].ind.Inactive = !active
	return nil
}

// Clear removes every indicator at once. IDs keep increasing.
func (s *Set) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.entries)
	s.entries = s.entries[:0]
	clear(s.index)
	clear(s.keys)
}

// Len returns the number of indicators in the set, including expired ones
// still fading out.
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

// Stats returns a snapshot of the set's counters.
func (s *Set) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Indicators = len(s.entries)
	return st
}

// alpha returns e's fade alpha at t.
func (s *Set) alpha(e *entry, t time.Duration) float64 {
	to := 0.0
	if e.shown {
		to = 1
	}
	d := s.app.FadeDuration
	if d <= 0 || t-e.fadeAt >= d {
		return to
	}
	p := s.app.Ease.Apply(float64(t-e.fadeAt) / float64(d))
	return e.fadeFrom + (to-e.fadeFrom)*p
}

// Frame advances the set to the clock's now and returns what to draw for
// cam and vp, reusing dst's storage: with a dst of enough capacity it
// does not allocate. Errors wrap [ErrBadCamera] or [ErrBadViewport]
// (ErrBadOptions when the margins leave no room in vp); on error the set
// is unchanged.
func (s *Set) Frame(cam Camera, vp Viewport, dst []State) (Frame, error) {
	proj, err := NewProjector(cam, vp)
	if err != nil {
		return Frame{}, err
	}
	cx, cy, hw, hh, err := s.area.Rect(vp)
	if err != nil {
		return Frame{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	nowT := s.now()
	t := nowT.Sub(s.epoch)
	app, lim, bud, prof := &s.app, &s.lim, &s.bud, &s.prof

	size := math.Min(app.Size*prof.Scale, lim.MaxSize*vp.H)
	glowLen := math.Min(app.GlowLength*prof.Scale, lim.MaxGlowLength*vp.H)
	shape := s.area.Shape

	// 1. Project, style and score every indicator; collect candidates.
	cands := s.cands[:0]
	for i := range s.entries {
		e := &s.entries[i]
		e.pick, e.locked, e.merged = false, false, 0
		if e.ind.Duration > 0 && !e.expired && t >= e.added+e.ind.Duration {
			e.expired = true
		}
		if e.ind.Kind == MinionNPC {
			continue
		}
		pr := proj.Project(e.ind.Target)
		e.pl = place(pr, shape, cx, cy, hw, hh)
		if n := e.ind.Sectors; n > 0 && e.pl.Clamped {
			a := Quantize(math.Atan2(e.pl.dy, e.pl.dx), n)
			e.pl = clampDir(math.Cos(a), math.Sin(a), shape, cx, cy, hw, hh)
		}
		e.dist, e.behind = pr.Distance, pr.Behind
		e.score = e.priority * (1 - pr.Distance/app.MaxDistance)
		var ok bool
		switch e.ind.Kind {
		case EdgeGlow:
			e.style, ok = Glow, !pr.OnScreen && !s.noGlow
		case ScreenEdge:
			e.style, ok = Marker, !pr.OnScreen && !s.noEdge
		case Contextual:
			// The style follows visibility every frame, but a shown
			// indicator keeps its style for MinDwell, so a target
			// hovering at the screen edge does not flip between glow
			// and marker.
			want := Marker
			if pr.OnScreen {
				want = Glow
			}
			if e.style != want && (e.style == 0 || !e.shown || t-e.styled >= bud.MinDwell) {
				e.style, e.styled = want, t
			}
			ok = !e.ind.Inactive
		}
		if !ok || e.expired || !(e.score > 0) {
			continue
		}
		dwelling := bud.MinDwell > 0 && e.ever && t-e.changed < bud.MinDwell
		if e.shown && dwelling {
			e.locked = true
		} else if e.shown && e.score < bud.Exit || !e.shown && (e.score < bud.Enter || dwelling) {
			continue
		}
		cands = append(cands, int32(i))
	}

	// 2. Pick in rank order (locked first, then score, then ID) under the
	// budget, merging close neighbours. A heap gives the order lazily:
	// only as many pops as it takes to fill the budget.
	less := func(a, b int32) bool {
		ea, eb := &s.entries[a], &s.entries[b]
		if ea.locked != eb.locked {
			return ea.locked
		}
		if ea.score != eb.score {
			return ea.score > eb.score
		}
		return ea.id < eb.id
	}
	heapify(cands, less)
	sel := s.sel[:0]
	var perRegion [numRegions]int
	mergeR := bud.MergeRadius
	if mergeR == 0 {
		mergeR = 2 * size
	}
	mergeR2 := mergeR * mergeR
	merged := 0
	n := len(cands)
	for ; n > 0 && len(sel) < bud.Max; n-- {
		i := cands[0]
		cands[0] = cands[n-1]
		siftDown(cands[:n-1], 0, less)
		e := &s.entries[i]
		if !bud.NoMerge && s.absorb(sel, e, mergeR2) {
			merged++
			continue
		}
		if perRegion[e.pl.Region] >= bud.MaxPerRegion {
			continue
		}
		e.pick = true
		perRegion[e.pl.Region]++
		sel = append(sel, i)
	}
	// Candidates left once the budget is full still count toward the
	// indicator they would merge into.
	if !bud.NoMerge && len(sel) > 0 {
		for _, i := range cands[:n] {
			if s.absorb(sel, &s.entries[i], mergeR2) {
				merged++
			}
		}
	}
	s.cands, s.sel = cands[:0], sel[:0]

	// 3. Apply transitions, emit what is visible, drop what has faded out
	// after expiring.
	states := dst[:0]
	pulseHz, depth := math.Min(app.PulseHz, prof.MaxFlashHz), app.PulseDepth
	if prof.ReduceMotion {
		depth = 0
	}
	for i := 0; i < len(s.entries); i++ {
		e := &s.entries[i]
		if e.pick != e.shown {
			e.fadeFrom = s.alpha(e, t)
			e.fadeAt, e.changed, e.shown = t, t, e.pick
			e.ever = e.ever || e.pick
		}
		a := s.alpha(e, t)
		if a <= 0 {
			if e.expired {
				s.removeAt(i)
				i--
			}
			continue
		}
		if e.ind.Kind == MinionNPC {
			continue
		}
		a *= pulse((t-e.added).Seconds(), pulseHz, depth) * distanceFade(e.dist, app.MaxDistance)
		if a <= 0 {
			continue
		}
		width := size
		if e.style == Glow && e.pl.Clamped {
			width = glowLen
		}
		states = append(states, State{
			ID: e.id, Kind: e.ind.Kind, Style: e.style, Shape: e.ind.Meaning.Shape(), Meaning: e.ind.Meaning,
			X: e.pl.X, Y: e.pl.Y, Angle: math.Atan2(e.pl.dy, e.pl.dx), Region: e.pl.Region, Clamped: e.pl.Clamped, Behind: e.behind,
			Alpha:     a,
			Intensity: Intensity(app.GlowIntensity, e.dist, app.MaxDistance, e.priority, lim.MaxIntensity),
			Color:     s.colours[e.ind.Meaning], Size: size, Width: width, Distance: e.dist,
			Merged: e.merged, Leaving: !e.shown,
		})
	}
	slices.SortFunc(states, func(a, b State) int { return cmp.Compare(a.ID, b.ID) })

	// 4. Move the guide.
	g := GuideState{Active: s.guide.Enabled}
	if g.Active {
		var best *entry
		for i := range s.entries {
			e := &s.entries[i]
			if e.ind.Kind == MinionNPC && !e.expired &&
				(best == nil || e.priority > best.priority || e.priority == best.priority && e.id < best.id) {
				best = e
			}
		}
		if best != nil {
			g.Target = best.id
			if s.framed && t > s.lastFrame {
				step := s.guide.Speed * (t - s.lastFrame).Seconds()
				d := best.ind.Target.Sub(s.guidePos)
				if l := d.Len(); l <= step {
					s.guidePos = best.ind.Target
				} else {
					s.guidePos = s.guidePos.Add(d.Scale(step / l))
				}
			}
		}
		g.Position = s.guidePos
	}
	s.lastFrame, s.framed = t, true
	s.stats.Frames++
	s.stats.Shown = len(sel)
	s.stats.Merged = merged
	return Frame{States: states, Guide: g, At: nowT}, nil
}

// absorb folds e into the first selected indicator of the same style
// drawn closer than the merge radius (squared: r2), if there is one.
func (s *Set) absorb(sel []int32, e *entry, r2 float64) bool {
	for _, j := range sel {
		o := &s.entries[j]
		if dx, dy := o.pl.X-e.pl.X, o.pl.Y-e.pl.Y; o.style == e.style && dx*dx+dy*dy < r2 {
			o.merged++
			return true
		}
	}
	return false
}

// heapify and siftDown keep a binary heap of indices ordered by less,
// without the interface boxing of container/heap.
func heapify(h []int32, less func(a, b int32) bool) {
	for i := len(h)/2 - 1; i >= 0; i-- {
		siftDown(h, i, less)
	}
}

func siftDown(h []int32, i int, less func(a, b int32) bool) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && less(h[r], h[l]) {
			m = r
		}
		if !less(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
