package settings

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"
)

// PreviewInfo identifies an open preview.
type PreviewInfo struct {
	ID       string    `json:"id"`
	Deadline time.Time `json:"deadline"` // when it reverts on its own
}

// Begin opens a preview for the player: a server-side session whose
// values everyone reading the player's settings sees at once (Get,
// subscribers, the bus), until Confirm stores them, Revert drops them, or
// timeout passes and it reverts on its own (0 means
// Options.PreviewTimeout). A player has at most one preview: Begin while
// one is open reverts it first. Beyond Options.MaxPreviews open previews
// Begin fails with ErrPreviewLimit.
func (m *Manager) Begin(ctx context.Context, player string, timeout time.Duration) (PreviewInfo, error) {
	if err := checkPlayer(player); err != nil {
		return PreviewInfo{}, err
	}
	if timeout <= 0 {
		timeout = m.opts.PreviewTimeout
	}
	unlock := m.lock(player)
	defer unlock()
	if old := m.peekPreview(player); old != nil {
		if err := m.endPreview(ctx, player, old.id, KindReverted); err != nil {
			return PreviewInfo{}, err
		}
		m.count(func(s *Stats) { s.PreviewsReverted++ })
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return PreviewInfo{}, ErrClosed
	}
	if len(m.previews) >= m.opts.MaxPreviews {
		return PreviewInfo{}, ErrPreviewLimit
	}
	p := &preview{id: newID(), values: map[string]any{}, deadline: m.now().Add(timeout)}
	id := p.id
	p.timer = time.AfterFunc(timeout, func() { m.expire(player, id) })
	m.previews[player] = p
	return PreviewInfo{ID: p.id, Deadline: p.deadline}, nil
}

func (m *Manager) peekPreview(player string) *preview {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.previews[player]
}

// previewFor returns the player's open preview with that ID, or
// ErrNoPreview.
func (m *Manager) previewFor(player, id string) (*preview, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	p := m.previews[player]
	if p == nil || p.id != id {
		return nil, ErrNoPreview
	}
	return p, nil
}

// Preview validates changes (as Set does, revisions aside) and shows them
// in the player's open preview, over earlier previewed values. Nothing
// is stored. Subscribers see a KindPreviewed Changed.
func (m *Manager) Preview(ctx context.Context, player, id string, changes map[string]any) error {
	if err := checkPlayer(player); err != nil {
		return err
	}
	cs := make([]Change, 0, len(changes))
	for _, k := range slices.Sorted(maps.Keys(changes)) {
		cs = append(cs, Change{Key: k, Value: changes[k]})
	}
	values, err := m.validateChanges(cs, false)
	if err != nil {
		m.count(func(s *Stats) { s.Rejected++ })
		return err
	}
	m.expandPreset(values, map[string]int64{})
	unlock := m.lock(player)
	defer unlock()
	if _, err := m.previewFor(player, id); err != nil {
		return err
	}
	snap, err := m.load(ctx, player)
	if err != nil {
		return err
	}
	before := m.resolve(player, snap, Target{}, true)
	m.mu.Lock()
	p := m.previews[player]
	if p == nil || p.id != id { // cannot happen: we hold the player's lock
		m.mu.Unlock()
		return ErrNoPreview
	}
	maps.Copy(p.values, values)
	m.mu.Unlock()
	after := m.resolve(player, snap, Target{}, true)
	m.notify(ctx, Changed{Version: 1, PlayerID: player, Kind: KindPreviewed, Keys: diff(before, after), Rev: snap.Rev, At: m.now()})
	return nil
}

// Confirm stores the preview's values and closes the preview. The player
// saw and accepted those values, so each is written over whatever is
// stored, also over a write another device made meanwhile. Subscribers see
// a KindApplied Changed for the values that differ from what was shown
// before the preview.
func (m *Manager) Confirm(ctx context.Context, player, id string) (Result, error) {
	if err := checkPlayer(player); err != nil {
		return Result{}, err
	}
	unlock := m.lock(player)
	defer unlock()
	p, err := m.previewFor(player, id)
	if err != nil {
		return Result{}, err
	}
	before, err := m.load(ctx, player)
	if err != nil {
		return Result{}, err
	}
	m.mu.Lock()
	values := maps.Clone(p.values)
	m.mu.Unlock()
	writes := make([]Write, 0, len(values))
	for _, k := range slices.Sorted(maps.Keys(values)) {
		b, _ := json.Marshal(values[k])
		writes = append(writes, Write{Key: k, Value: b, IfRev: AnyRev})
	}
	// What observers saw before the preview, not with it.
	old := m.resolve(player, before, Target{}, false)
	after := before
	if len(writes) > 0 {
		if after, _, err = m.apply(ctx, player, writes); err != nil {
			return Result{}, err
		}
	}
	m.mu.Lock()
	if m.previews[player] == p {
		p.timer.Stop()
		delete(m.previews, player)
	}
	m.stats.PreviewsConfirmed++
	m.stats.Writes++
	m.mu.Unlock()
	cur := m.resolve(player, after, Target{}, true)
	keys := diff(old, cur)
	m.notify(ctx, Changed{Version: 1, PlayerID: player, Kind: KindApplied, Keys: keys, Rev: after.Rev, At: m.now()})
	return Result{Rev: after.Rev, Keys: keys}, nil
}

// Revert drops the preview's values; subscribers see a KindReverted
// Changed back to the values shown before the preview (video included).
func (m *Manager) Revert(ctx context.Context, player, id string) error {
	if err := checkPlayer(player); err != nil {
		return err
	}
	unlock := m.lock(player)
	defer unlock()
	if err := m.endPreview(ctx, player, id, KindReverted); err != nil {
		return err
	}
	m.count(func(s *Stats) { s.PreviewsReverted++ })
	return nil
}

// expire reverts a preview whose timeout passed; it runs on the
// preview's timer.
func (m *Manager) expire(player, id string) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.expiring.Add(1)
	m.mu.Unlock()
	defer m.expiring.Done()
	unlock := m.lock(player)
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if m.endPreview(ctx, player, id, KindReverted) == nil {
		m.count(func(s *Stats) { s.PreviewsExpired++ })
	}
}

// endPreview removes the preview and notifies. The caller holds the
// player's lock.
func (m *Manager) endPreview(ctx context.Context, player, id string, kind Kind) error {
	p, err := m.previewFor(player, id)
	if err != nil {
		return err
	}
	// A store that cannot be read still ends the preview; observers then
	// get no diff (nothing to compare with) and re-read.
	snap, loadErr := m.load(ctx, player)
	before := m.resolve(player, snap, Target{}, true)
	m.mu.Lock()
	p.timer.Stop()
	delete(m.previews, player)
	m.mu.Unlock()
	if loadErr != nil {
		m.log.Warn("settings: reverting preview without a stored snapshot", "player", player, "err", loadErr)
		return nil
	}
	after := m.resolve(player, snap, Target{}, true)
	m.notify(ctx, Changed{Version: 1, PlayerID: player, Kind: kind, Keys: diff(before, after), Rev: snap.Rev, At: m.now()})
	return nil
}
