package payment

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// MemoryStore is an in-memory [Store]. Its zero value is not ready: use
// [NewMemoryStore]. It is safe for concurrent use, holds no goroutines and
// needs no closing. Its contents live as long as the process.
type MemoryStore struct {
	now func() time.Time

	mu        sync.RWMutex
	events    map[string]eventEntry
	sweepAt   int
	version   int64
	grants    map[string]map[string]Grant
	owners    map[string]string // source ID -> player ID
	customers map[string]string
	attrs     map[string]struct{}
	stats     map[string]*AmbassadorStats
}

var _ Store = (*MemoryStore)(nil)

// eventEntry is a claim (token set) or a finished event (done), kept
// until exp.
type eventEntry struct {
	token string
	done  bool
	exp   time.Time
}

// MemoryStoreOptions configure a [MemoryStore]. The zero value is ready to
// use.
type MemoryStoreOptions struct {
	// Now is the store's clock for claim expiry. nil means time.Now.
	Now func() time.Time
}

// NewMemoryStore returns an empty store. Every MemoryStoreOptions value is
// valid today; the error is there so that NewMemoryStore has the shape of
// every constructor in the SDK and can refuse options added later.
func NewMemoryStore(opts MemoryStoreOptions) (*MemoryStore, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{
		now:       now,
		sweepAt:   1024,
		events:    make(map[string]eventEntry),
		grants:    make(map[string]map[string]Grant),
		owners:    make(map[string]string),
		customers: make(map[string]string),
		attrs:     make(map[string]struct{}),
		stats:     make(map[string]*AmbassadorStats),
	}, nil
}

// ClaimEvent implements [Store].
func (s *MemoryStore) ClaimEvent(_ context.Context, eventID, token string, lease time.Duration) (EventClaim, error) {
	if eventID == "" || token == "" {
		return EventClaim{}, fmt.Errorf("payment: claim needs an event ID and a token")
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.events[eventID]; ok && now.Before(e.exp) {
		if e.done {
			return EventClaim{State: ClaimDone}, nil
		}
		return EventClaim{State: ClaimBusy}, nil
	}
	s.events[eventID] = eventEntry{token: token, exp: now.Add(lease)}
	s.sweep(now)
	s.version++
	return EventClaim{State: ClaimAcquired, Version: s.version}, nil
}

// sweep drops expired entries whenever the map doubled (amortized O(1));
// s.mu must be held.
func (s *MemoryStore) sweep(now time.Time) {
	if len(s.events) < s.sweepAt {
		return
	}
	for id, e := range s.events {
		if !now.Before(e.exp) {
			delete(s.events, id)
		}
	}
	s.sweepAt = max(1024, 2*len(s.events))
}

// FinishEvent implements [Store].
func (s *MemoryStore) FinishEvent(_ context.Context, eventID string, retention time.Duration) error {
	now := s.now()
	s.mu.Lock()
	s.events[eventID] = eventEntry{done: true, exp: now.Add(retention)}
	s.sweep(now)
	s.mu.Unlock()
	return nil
}

// ReleaseEvent implements [Store].
func (s *MemoryStore) ReleaseEvent(_ context.Context, eventID, token string) error {
	s.mu.Lock()
	if e, ok := s.events[eventID]; ok && !e.done && e.token == token {
		delete(s.events, eventID)
	}
	s.mu.Unlock()
	return nil
}

// NextVersion implements [Store].
func (s *MemoryStore) NextVersion(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version++
	return s.version, nil
}

// PutGrant implements [Store].
func (s *MemoryStore) PutGrant(_ context.Context, g Grant) (bool, error) {
	if g.PlayerID == "" || g.SourceID == "" {
		return false, fmt.Errorf("payment: grant needs a player and a source ID")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.grants[g.PlayerID]
	if m == nil {
		m = make(map[string]Grant, 1)
		s.grants[g.PlayerID] = m
	}
	if cur, ok := m[g.SourceID]; ok && cur.Version > g.Version {
		return false, nil
	}
	if prev, ok := s.owners[g.SourceID]; ok && prev != g.PlayerID {
		delete(s.grants[prev], g.SourceID)
	}
	m[g.SourceID] = g
	s.owners[g.SourceID] = g.PlayerID
	return true, nil
}

// Grants implements [Store].
func (s *MemoryStore) Grants(_ context.Context, playerID string) ([]Grant, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m := s.grants[playerID]
	if len(m) == 0 {
		return nil, nil
	}
	out := make([]Grant, 0, len(m))
	for _, g := range m {
		out = append(out, g)
	}
	return out, nil
}

// resolveInto derives the entitlement under the read lock without copying
// the grants; Entitlements uses it for its allocation-free fast path.
func (s *MemoryStore) resolveInto(playerID string, now time.Time, rank func(string) int) Entitlement {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m := s.grants[playerID]
	var buf [4]Grant
	gs := buf[:0]
	for _, g := range m {
		gs = append(gs, g)
	}
	return resolve(playerID, gs, now, rank)
}

// GrantOwner implements [Store].
func (s *MemoryStore) GrantOwner(_ context.Context, sourceID string) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p, ok := s.owners[sourceID]
	if !ok {
		return "", ErrNotFound
	}
	return p, nil
}

// PutCustomer implements [Store].
func (s *MemoryStore) PutCustomer(_ context.Context, playerID, customerID string) error {
	s.mu.Lock()
	s.customers[playerID] = customerID
	s.mu.Unlock()
	return nil
}

// Customer implements [Store].
func (s *MemoryStore) Customer(_ context.Context, playerID string) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.customers[playerID]
	if !ok {
		return "", ErrNotFound
	}
	return c, nil
}

// AddAttribution implements [Store].
func (s *MemoryStore) AddAttribution(_ context.Context, a Attribution) (bool, error) {
	if a.ID == "" || a.AmbassadorID == "" {
		return false, fmt.Errorf("payment: attribution needs an ID and an ambassador")
	}
	if a.Amount < 0 {
		return false, fmt.Errorf("payment: negative attribution amount")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.attrs[a.ID]; ok {
		return false, nil
	}
	s.attrs[a.ID] = struct{}{}
	st := s.stats[a.AmbassadorID]
	if st == nil {
		st = &AmbassadorStats{AmbassadorID: a.AmbassadorID}
		s.stats[a.AmbassadorID] = st
	}
	switch a.Kind {
	case AttributionCheckout:
		st.Checkouts++
	case AttributionInvoice:
		st.Invoices++
		if a.Amount != 0 {
			if st.Revenue == nil {
				st.Revenue = make(map[string]int64)
			}
			st.Revenue[a.Currency] += a.Amount
		}
	case AttributionRefund:
		st.Refunds++
		if a.Amount != 0 {
			if st.Revenue == nil {
				st.Revenue = make(map[string]int64)
			}
			st.Revenue[a.Currency] -= a.Amount
		}
	}
	return true, nil
}

// AmbassadorStats implements [Store].
func (s *MemoryStore) AmbassadorStats(_ context.Context, ambassadorID string) (AmbassadorStats, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.stats[ambassadorID]
	if st == nil {
		return AmbassadorStats{AmbassadorID: ambassadorID}, nil
	}
	out := *st
	if st.Revenue != nil {
		out.Revenue = make(map[string]int64, len(st.Revenue))
		for k, v := range st.Revenue {
			out.Revenue[k] = v
		}
	}
	return out, nil
}
