package settings

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// TopicChanged is the event-bus topic of [Changed] events.
const TopicChanged = "settings.changed"

// Kind says what caused a change.
type Kind string

// Change kinds.
const (
	KindApplied   Kind = "applied"   // Set, SetServer or a confirmed preview stored values
	KindReset     Kind = "reset"     // ResetToDefaults removed stored values
	KindPreviewed Kind = "previewed" // a preview showed values that are not stored yet
	KindReverted  Kind = "reverted"  // a preview was reverted, by the player or by its timeout
)

// KeyChange is one key's effective value before and after a change, as
// resolved for the zero Target (no platform, device or mode).
type KeyChange struct {
	Key string `json:"key"`
	Old any    `json:"old"`
	New any    `json:"new"`
}

// Changed is the payload of a settings.changed event and of in-process
// notifications: one player's effective settings changed. Audio and
// indicators consume it to apply volumes, subtitles, reduce-motion and so
// on, without importing this package.
type Changed struct {
	// Version of this payload; currently 1.
	Version  int         `json:"version"`
	PlayerID string      `json:"player_id"`
	Kind     Kind        `json:"kind"`
	Keys     []KeyChange `json:"keys"`
	// Rev is the player's stored revision after the change (unchanged by
	// previews and reverts).
	Rev int64     `json:"rev"`
	At  time.Time `json:"at"`
}

// Match selects the changes a subscription receives: a change to a key
// listed in Keys, or to any key of a group listed in Groups. The zero
// Match selects every change.
type Match struct {
	Keys   []string
	Groups []string
}

func (m Match) matches(key string) bool {
	if len(m.Keys) == 0 && len(m.Groups) == 0 {
		return true
	}
	if slices.Contains(m.Keys, key) {
		return true
	}
	for _, g := range m.Groups {
		if len(key) > len(g) && key[len(g)] == '.' && key[:len(g)] == g {
			return true
		}
	}
	return false
}

// Subscription receives [Changed] notifications in process. Its channel
// holds a bounded number of notifications (Options.SubscriptionBuffer);
// when it is full, new notifications are dropped (drop newest) and
// counted in Dropped: a consumer that sees Dropped grow re-reads the
// settings with [Manager.Get]. Notifications of one player arrive in the
// order the changes happened. A Subscription is safe for concurrent use;
// the zero value is not usable. Stop it with Unsubscribe, which closes C.
type Subscription struct {
	m       *Manager
	match   Match
	ch      chan Changed
	dropped atomic.Int64
	once    sync.Once
}

// C returns the channel notifications arrive on; it is closed by
// Unsubscribe and by Manager.Close.
func (s *Subscription) C() <-chan Changed { return s.ch }

// Dropped returns how many notifications were dropped because C was full.
func (s *Subscription) Dropped() int64 { return s.dropped.Load() }

// Unsubscribe stops notifications and closes C. It is idempotent.
func (s *Subscription) Unsubscribe() {
	s.m.subMu.Lock()
	defer s.m.subMu.Unlock()
	s.closeLocked()
}

func (s *Subscription) closeLocked() {
	s.once.Do(func() {
		delete(s.m.subs, s)
		close(s.ch)
	})
}

// filtered returns c with only the keys s matches, and whether any is left.
func (s *Subscription) filtered(c Changed) (Changed, bool) {
	var keys []KeyChange
	for _, k := range c.Keys {
		if s.match.matches(k.Key) {
			keys = append(keys, k)
		}
	}
	c.Keys = keys
	return c, len(keys) > 0
}
