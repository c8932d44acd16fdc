package settings

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Type is the type of a setting's value. Values travel as Go values of one
// type per Type (see each constant) and as JSON.
type Type uint8

// Setting types.
const (
	// Bool values are bool; JSON true/false.
	Bool Type = iota + 1
	// Int values are int64; JSON integers (a float with a fraction is refused).
	Int
	// Float values are float64; JSON numbers (NaN and infinities are refused).
	Float
	// String values are string; JSON strings.
	String
	// Bindings values are map[string]string from action to key or button
	// name; a JSON object. Two actions bound to the same key are a
	// conflict (see [ErrBindingConflict]).
	Bindings
)

func (t Type) String() string {
	switch t {
	case Bool:
		return "bool"
	case Int:
		return "int"
	case Float:
		return "float"
	case String:
		return "string"
	case Bindings:
		return "bindings"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Tag classifies a setting. The built-in tags are constants; studios may
// use their own.
type Tag string

// Built-in tags.
const (
	// TagLocal marks machine-specific settings (video, audio device): they
	// stay with a device profile and are not meant for cloud sync.
	TagLocal Tag = "local"
	// TagShared marks per-player settings that follow the player across
	// devices (subtitles, sensitivity, bindings, accessibility).
	TagShared Tag = "shared"
	// TagCompetitive marks settings that can give an edge in competitive
	// play (FOV, dead zones): the server clamps them with its [Rule]s at
	// every resolve, whatever a client stored.
	TagCompetitive Tag = "competitive"
	// TagServerOnly marks settings clients may not write: [Manager.Set]
	// refuses them unless the change is marked as the server's.
	TagServerOnly Tag = "server-only"
	// TagAccessibility marks accessibility settings.
	TagAccessibility Tag = "accessibility"
)

// PlatformTag returns the tag that limits a setting to one platform
// ("platform:pc"). A setting with platform tags applies only on the
// platforms they name ([Setting.OnPlatform]); one without applies
// everywhere.
func PlatformTag(platform string) Tag { return Tag("platform:" + platform) }

// Choice is one allowed value of an Int or String setting, with the label
// players see (they never see raw numbers).
type Choice struct {
	Value any    // int64 for Int settings, string for String settings
	Label string // e.g. "High"
}

// Setting describes one key. Key, Type and Default are required; Key is
// "group.name" with lower-case ASCII letters, digits, '_' and '.', and the
// group is the part before the first dot.
type Setting struct {
	Key     string
	Type    Type
	Default any
	// Min and Max bound Int and Float values when HasRange is set.
	Min, Max float64
	HasRange bool
	// Choices, when not empty, lists every allowed value of an Int or
	// String setting.
	Choices []Choice
	// Units names the unit of a number ("%", "deg", "min", "fps", "px").
	Units string
	// Tags classify the setting (TagLocal, TagShared, TagCompetitive…).
	Tags []Tag
	// Since is the schema version the key appeared in (1 for the keys of
	// the original SaveGame).
	Since int
	// Conflict resolves a write made from a stale revision of this key.
	// The zero value is ConflictReject.
	Conflict ConflictPolicy
	// Doc is a one-line description shown in exports and tools.
	Doc string
}

// Group returns the part of the key before the first dot.
func (s *Setting) Group() string { g, _, _ := strings.Cut(s.Key, "."); return g }

// HasTag reports whether the setting carries t.
func (s *Setting) HasTag(t Tag) bool { return slices.Contains(s.Tags, t) }

// OnPlatform reports whether the setting applies on platform: it has no
// platform tags, or one of them names platform.
func (s *Setting) OnPlatform(platform string) bool {
	limited := false
	for _, t := range s.Tags {
		if p, ok := strings.CutPrefix(string(t), "platform:"); ok {
			if p == platform {
				return true
			}
			limited = true
		}
	}
	return !limited
}

// Label returns the display label of value v, or "" when the setting has
// no choice for it.
func (s *Setting) Label(v any) string {
	for _, c := range s.Choices {
		if c.Value == v {
			return c.Label
		}
	}
	return ""
}

// Migration upgrades a document of schema version n to version n+1. It
// receives the stored values as JSON-decoded Go values (float64, string,
// bool, map[string]any), may change, add and delete keys, and must not
// touch keys it does not know: they belong to newer servers or to the
// studio. It must be deterministic; applying it to its own output's
// predecessor twice must give the same result (migrations run once per
// version step, but a crashed save may repeat one).
type Migration func(values map[string]any) error

// Schema is an ordered set of settings plus the migrations that bring old
// documents to its Version. Build one with [NewSchema] or start from
// [Builtin] and [Schema.Extend] it. A Schema is immutable once built and
// safe for concurrent use; the zero value is an empty schema of version 0.
type Schema struct {
	version    int
	settings   []*Setting
	byKey      map[string]*Setting
	migrations map[int]Migration // from version n to n+1
}

// NewSchema returns a schema of the given version with the settings and
// migrations (keyed by the version they upgrade from). It checks every
// setting: a bad key, a default that fails its own validation, a
// duplicate or a missing migration step is an error wrapping
// [ErrInvalidSchema].
func NewSchema(version int, settings []Setting, migrations map[int]Migration) (*Schema, error) {
	s := &Schema{version: version, byKey: make(map[string]*Setting, len(settings)), migrations: maps.Clone(migrations)}
	if version < 1 {
		return nil, fmt.Errorf("%w: version %d, want ≥ 1", ErrInvalidSchema, version)
	}
	for i := range settings {
		if err := s.add(settings[i]); err != nil {
			return nil, err
		}
	}
	for v := 1; v < version; v++ {
		if s.migrations[v] == nil {
			return nil, fmt.Errorf("%w: no migration from version %d to %d", ErrInvalidSchema, v, v+1)
		}
	}
	return s, nil
}

func (s *Schema) add(st Setting) error {
	if !validKey(st.Key) || !strings.Contains(st.Key, ".") {
		return fmt.Errorf("%w: key %q: want group.name in [a-z0-9_.]", ErrInvalidSchema, st.Key)
	}
	if _, dup := s.byKey[st.Key]; dup {
		return fmt.Errorf("%w: duplicate key %q", ErrInvalidSchema, st.Key)
	}
	if st.Type < Bool || st.Type > Bindings {
		return fmt.Errorf("%w: key %q: unknown type %v", ErrInvalidSchema, st.Key, st.Type)
	}
	if st.Since < 1 || st.Since > s.version {
		return fmt.Errorf("%w: key %q: since %d outside 1..%d", ErrInvalidSchema, st.Key, st.Since, s.version)
	}
	st.Tags = slices.Clone(st.Tags)
	st.Choices = slices.Clone(st.Choices)
	for i, c := range st.Choices {
		v, err := normalize(&st, c.Value)
		if err != nil || (st.Type != Int && st.Type != String) {
			return fmt.Errorf("%w: key %q: choice %v does not fit type %v", ErrInvalidSchema, st.Key, c.Value, st.Type)
		}
		st.Choices[i].Value = v
	}
	def, err := checkValue(&st, st.Default)
	if err != nil {
		return fmt.Errorf("%w: key %q: default: %v", ErrInvalidSchema, st.Key, err)
	}
	st.Default = def
	p := &st
	s.settings = append(s.settings, p)
	s.byKey[st.Key] = p
	return nil
}

// Extend returns a new schema with s's settings and migrations plus the
// given ones, at the given version (≥ s's). Studios add their own keys this
// way; a key that collides with an existing one is an error.
func (s *Schema) Extend(version int, settings []Setting, migrations map[int]Migration) (*Schema, error) {
	all := make([]Setting, 0, len(s.settings)+len(settings))
	for _, st := range s.settings {
		all = append(all, *st)
	}
	all = append(all, settings...)
	m := maps.Clone(s.migrations)
	if m == nil {
		m = map[int]Migration{}
	}
	for v, f := range migrations {
		if _, dup := m[v]; dup {
			return nil, fmt.Errorf("%w: a migration from version %d exists", ErrInvalidSchema, v)
		}
		m[v] = f
	}
	if version < s.version {
		return nil, fmt.Errorf("%w: version %d below %d", ErrInvalidSchema, version, s.version)
	}
	return NewSchema(version, all, m)
}

// Version returns the schema version documents are migrated to.
func (s *Schema) Version() int { return s.version }

// Lookup returns the setting for key, or nil and false. The returned
// Setting must not be modified.
func (s *Schema) Lookup(key string) (*Setting, bool) {
	st, ok := s.byKey[key]
	return st, ok
}

// Settings returns every setting in schema order. The returned Settings
// must not be modified.
func (s *Schema) Settings() []*Setting { return slices.Clone(s.settings) }

// Keys returns, in schema order, the keys that carry every one of tags
// (all keys when none is given): Keys(TagShared) is what may follow a
// player to the cloud, Keys(TagLocal) what stays with a device.
func (s *Schema) Keys(tags ...Tag) []string {
	var keys []string
	for _, st := range s.settings {
		if !slices.ContainsFunc(tags, func(t Tag) bool { return !st.HasTag(t) }) {
			keys = append(keys, st.Key)
		}
	}
	return keys
}

// Groups returns the distinct groups in schema order.
func (s *Schema) Groups() []string {
	var gs []string
	for _, st := range s.settings {
		if g := st.Group(); !slices.Contains(gs, g) {
			gs = append(gs, g)
		}
	}
	return gs
}

// Defaults returns every key's default value.
func (s *Schema) Defaults() map[string]any {
	m := make(map[string]any, len(s.settings))
	for _, st := range s.settings {
		m[st.Key] = cloneValue(st.Default)
	}
	return m
}

func validKey(k string) bool {
	if k == "" || len(k) > MaxKeyBytes || k[0] == '.' || k[len(k)-1] == '.' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
