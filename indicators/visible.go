package indicators

import (
	"fmt"
	"time"
)

// TopicVisible is the event-bus topic of [Visible] events.
const TopicVisible = "indicators.visible"

// Visible is the payload of an indicators.visible event: the indicators a
// server has decided one player may see ("what"); the player's client
// projects and draws them ("where") by applying the payload to its [Set]
// with [Set.Apply]. Publish it with eventbus.Publish keyed by player ID
// on a pub/sub transport; only the latest matters, so consumers subscribe
// with the KeepLatest overflow policy:
//
//	eventbus.Publish(ctx, bus, indicators.TopicVisible, v, eventbus.WithKey(v.PlayerID))
//
// This package does not import eventbus; the payload is plain JSON.
type Visible struct {
	// Version of this payload; currently 1.
	Version    int                `json:"version"`
	WorldID    string             `json:"world_id,omitempty"`
	PlayerID   string             `json:"player_id"`
	At         time.Time          `json:"at"`
	Indicators []VisibleIndicator `json:"indicators"`
}

// VisibleIndicator is one indicator in a [Visible] payload. Exactly one of
// Target and Rough is set: the exact location when the player may know
// it, else a bearing sector and distance band (see [Roughen]), so a
// modified client learns nothing more than it shows.
type VisibleIndicator struct {
	// Key is the server's stable name for the indicator; it survives
	// across payloads (a Set's IDs do not).
	Key      string        `json:"key"`
	Kind     Kind          `json:"kind"`
	Meaning  Meaning       `json:"meaning,omitempty"`
	Priority float64       `json:"priority,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	Target   *Vec3         `json:"target,omitempty"`
	Rough    *Rough        `json:"rough,omitempty"`
}

// VisibleVersion is the current [Visible].Version.
const VisibleVersion = 1

// Apply makes the set hold exactly v's indicators, by Key: new keys are
// added, known keys get their target, kind, priority, meaning and
// duration updated, and keys missing from v expire and fade out. A Rough
// indicator is placed at Rough.Location(viewer, bands). Apply checks the
// whole payload first and changes nothing when any of it is bad; errors
// wrap [ErrBadOptions] or [ErrBadTarget]. Indicators added with [Set.Add]
// are not touched.
func (s *Set) Apply(v Visible, viewer Vec3, bands []float64) error {
	if v.Version != VisibleVersion {
		return fmt.Errorf("%w: Visible version %d, want %d", ErrBadOptions, v.Version, VisibleVersion)
	}
	if err := ValidTarget(viewer); err != nil {
		return err
	}
	inds := make([]Indicator, len(v.Indicators))
	pris := make([]float64, len(v.Indicators))
	seen := make(map[string]bool, len(v.Indicators))
	for i, vi := range v.Indicators {
		if vi.Key == "" || seen[vi.Key] {
			return fmt.Errorf("%w: Visible key %q empty or repeated", ErrBadOptions, vi.Key)
		}
		seen[vi.Key] = true
		ind := Indicator{Kind: vi.Kind, Meaning: vi.Meaning, Priority: vi.Priority, Duration: vi.Duration}
		switch {
		case vi.Target != nil && vi.Rough == nil:
			ind.Target = *vi.Target
		case vi.Rough != nil && vi.Target == nil:
			if vi.Rough.Sectors < 1 || vi.Rough.Sector < 0 || vi.Rough.Sector >= vi.Rough.Sectors || vi.Rough.Band < 0 {
				return fmt.Errorf("%w: Visible %q: rough %+v", ErrBadOptions, vi.Key, *vi.Rough)
			}
			ind.Target = vi.Rough.Location(viewer, bands)
		default:
			return fmt.Errorf("%w: Visible %q: want exactly one of target and rough", ErrBadOptions, vi.Key)
		}
		p, err := ind.validate()
		if err != nil {
			return fmt.Errorf("visible %q: %w", vi.Key, err)
		}
		inds[i], pris[i] = ind, p
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.now().Sub(s.epoch)
	if s.keys == nil {
		s.keys = make(map[string]ID)
	}
	for key, id := range s.keys {
		if !seen[key] {
			if i, ok := s.index[id]; ok {
				s.entries[i].expired = true
			}
			delete(s.keys, key)
		}
	}
	for i, vi := range v.Indicators {
		if id, ok := s.keys[vi.Key]; ok {
			if j, ok := s.index[id]; ok && !s.entries[j].expired {
				e := &s.entries[j]
				e.ind, e.priority = inds[i], pris[i]
				continue
			}
		}
		s.nextID++
		s.index[s.nextID] = len(s.entries)
		s.entries = append(s.entries, entry{id: s.nextID, ind: inds[i], priority: pris[i], added: t})
		s.keys[vi.Key] = s.nextID
	}
	return nil
}
