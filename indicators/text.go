package indicators

import (
	"fmt"
	"slices"
)

// The enums encode as their names in JSON and other text formats, so
// payloads and golden files read well and survive reordering.

func parseName(what string, names []string, b []byte) (int, error) {
	if i := slices.Index(names, string(b)); i >= 0 {
		return i, nil
	}
	return 0, fmt.Errorf("%w: unknown %s %q", ErrBadOptions, what, b)
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *Kind) UnmarshalText(b []byte) error {
	i, err := parseName("kind", kindNames[:], b)
	*k = Kind(i)
	return err
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Style) UnmarshalText(b []byte) error {
	i, err := parseName("style", []string{"", "glow", "marker"}, b)
	*s = Style(i)
	return err
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Shape) UnmarshalText(b []byte) error {
	i, err := parseName("shape", shapeNames[:], b)
	*s = Shape(i)
	return err
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *Meaning) UnmarshalText(b []byte) error {
	i, err := parseName("meaning", meaningNames[:], b)
	*m = Meaning(i)
	return err
}

// MarshalText implements encoding.TextMarshaler.
func (r Region) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Region) UnmarshalText(b []byte) error {
	i, err := parseName("region", regionNames[:], b)
	*r = Region(i)
	return err
}

// MarshalText implements encoding.TextMarshaler.
func (c CVD) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *CVD) UnmarshalText(b []byte) error {
	i, err := parseName("colour-vision deficiency", cvdNames[:], b)
	*c = CVD(i)
	return err
}
