package settings

import (
	"fmt"
	"slices"
)

// Layer is a source of values. Later layers win: default < platform <
// device < player < preview < server.
type Layer uint8

// Layers, lowest precedence first.
const (
	LayerDefault  Layer = iota // the schema's defaults
	LayerPlatform              // Options.Platforms[target.Platform]
	LayerDevice                // Options.Devices[target.Device] (a device profile, a benchmark result)
	LayerPlayer                // the player's stored values
	LayerPreview               // values of the player's open preview
	LayerServer                // Options.Overrides: the server's word, above anything a client sent
	numLayers
)

var layerNames = [...]string{"default", "platform", "device", "player", "preview", "server"}

func (l Layer) String() string {
	if int(l) < len(layerNames) {
		return layerNames[l]
	}
	return fmt.Sprintf("Layer(%d)", uint8(l))
}

// MarshalText encodes the layer's name.
func (l Layer) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText decodes a layer's name.
func (l *Layer) UnmarshalText(b []byte) error {
	for i, n := range layerNames {
		if n == string(b) {
			*l = Layer(i)
			return nil
		}
	}
	return fmt.Errorf("%w: unknown layer %q", ErrMalformed, b)
}

// ConflictPolicy says how a write based on a stale revision of a key is
// resolved. The zero value is ConflictReject.
type ConflictPolicy uint8

// Conflict policies.
const (
	// ConflictReject refuses the write with a *ConflictError; the client
	// re-reads and asks the player.
	ConflictReject ConflictPolicy = iota
	// ConflictLastWriterWins applies the write over the newer value.
	ConflictLastWriterWins
	// ConflictMax keeps the larger of the two numbers (accessibility
	// values such as text size: never shrink what a player needed);
	// for non-numbers it acts as ConflictLastWriterWins.
	ConflictMax
)

// Rule is a server-side clamp on a number setting in one mode: a resolve
// for a Target with that Mode (or any mode, when Rule.Mode is "") limits
// the key's value to [Min, Max] and records Reason.
type Rule struct {
	Key    string
	Mode   string // "" applies in every mode
	Min    float64
	Max    float64
	Reason string // shown to the player: "FOV limited to 110 in ranked"
}

// Target says which platform, device profile and mode values are resolved
// for. The zero value resolves with no platform or device layer and no
// mode.
type Target struct {
	Platform string
	Device   string
	Mode     string
}

// Source is one layer's value for a key.
type Source struct {
	Layer Layer `json:"layer"`
	Value any   `json:"value"`
}

// Explanation says where a key's effective value came from.
type Explanation struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
	Layer Layer  `json:"layer"` // the layer that won
	// Shadowed lists the lower layers' values the winner hid, highest
	// layer first.
	Shadowed []Source `json:"shadowed,omitempty"`
	// Clamped is set when a Rule changed the winning value; Reason says
	// why and Unclamped holds the value before.
	Clamped   bool   `json:"clamped,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Unclamped any    `json:"unclamped,omitempty"`
	// Ignored lists layer values that failed validation under the current
	// schema and were skipped (a stored value out of a narrowed range).
	Ignored []Source `json:"ignored,omitempty"`
}

// Resolved is the effective settings of one player for one Target. It is
// immutable and safe for concurrent use; the zero value has no keys.
type Resolved struct {
	values  map[string]any
	explain map[string]*Explanation
	keys    []string
	revs    map[string]int64
	rev     int64
}

// Value returns key's effective value (int64, float64, bool, string or
// map[string]string) and whether the key exists.
func (r *Resolved) Value(key string) (any, bool) {
	v, ok := r.values[key]
	return cloneValue(v), ok
}

// Values returns every effective value.
func (r *Resolved) Values() map[string]any {
	m := make(map[string]any, len(r.values))
	for k, v := range r.values {
		m[k] = cloneValue(v)
	}
	return m
}

// Keys returns the keys in schema order.
func (r *Resolved) Keys() []string { return slices.Clone(r.keys) }

// Explain tells which layer's value won for key, what it shadowed and
// whether a rule clamped it. ok is false for an unknown key.
func (r *Resolved) Explain(key string) (Explanation, bool) {
	e, ok := r.explain[key]
	if !ok {
		return Explanation{}, false
	}
	c := *e
	c.Shadowed = slices.Clone(e.Shadowed)
	c.Ignored = slices.Clone(e.Ignored)
	return c, true
}

// Resolve merges layers over the schema's defaults: layers[l] holds the
// values of Layer l (missing or nil maps are empty; LayerDefault's is
// ignored). Values are checked against the schema; one that fails is
// skipped and listed in the key's Explanation.Ignored. Rules whose Mode
// matches mode clamp the winner. Keys that are not in the schema are
// ignored.
func (s *Schema) Resolve(layers map[Layer]map[string]any, mode string, rules []Rule) *Resolved {
	r := &Resolved{values: make(map[string]any, len(s.settings)), explain: make(map[string]*Explanation, len(s.settings))}
	for _, st := range s.settings {
		e := &Explanation{Key: st.Key, Value: st.Default, Layer: LayerDefault}
		var stack []Source
		stack = append(stack, Source{LayerDefault, st.Default})
		for l := LayerPlatform; l < numLayers; l++ {
			raw, ok := layers[l][st.Key]
			if !ok {
				continue
			}
			v, err := checkValue(st, raw)
			if err != nil {
				e.Ignored = append(e.Ignored, Source{l, raw})
				continue
			}
			stack = append(stack, Source{l, v})
		}
		top := stack[len(stack)-1]
		e.Value, e.Layer = top.Value, top.Layer
		for i := len(stack) - 2; i >= 0; i-- {
			e.Shadowed = append(e.Shadowed, stack[i])
		}
		for _, ru := range rules {
			if ru.Key != st.Key || (ru.Mode != "" && ru.Mode != mode) {
				continue
			}
			if v, changed := clampTo(e.Value, ru.Min, ru.Max); changed {
				e.Unclamped, e.Value, e.Clamped, e.Reason = e.Value, v, true, ru.Reason
			}
		}
		r.values[st.Key] = e.Value
		r.explain[st.Key] = e
		r.keys = append(r.keys, st.Key)
	}
	return r
}

func clampTo(v any, lo, hi float64) (any, bool) {
	switch x := v.(type) {
	case int64:
		if float64(x) < lo {
			return int64(lo), true
		}
		if float64(x) > hi {
			return int64(hi), true
		}
	case float64:
		if x < lo {
			return lo, true
		}
		if x > hi {
			return hi, true
		}
	}
	return v, false
}

// Rev returns the stored revision of key (0 when the player never set
// it): what a client sends back as Change.IfRev.
func (r *Resolved) Rev(key string) int64 { return r.revs[key] }

// StoredRev returns the player's highest stored revision.
func (r *Resolved) StoredRev() int64 { return r.rev }
