package settings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/bodybroker/sdk/internal/langtag"
)

// Limits that are not configurable.
const (
	// MaxKeyBytes bounds a key's length.
	MaxKeyBytes = 128
	// MaxStringBytes bounds a String value.
	MaxStringBytes = 256
	// MaxBindings bounds the actions in one Bindings value.
	MaxBindings = 256
	// MaxBindingBytes bounds an action or key name in a binding.
	MaxBindingBytes = 64
	// DefaultMaxDocumentBytes is the default bound on an encoded
	// document or request body.
	DefaultMaxDocumentBytes = 64 << 10
)

// normalize converts v to the Go type of s's Type: JSON numbers, any Go
// integer or float, and map[string]any bindings are accepted.
func normalize(s *Setting, v any) (any, error) {
	switch s.Type {
	case Bool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case Int:
		switch n := v.(type) {
		case int:
			return int64(n), nil
		case int32:
			return int64(n), nil
		case int64:
			return n, nil
		case float64:
			if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
				return int64(n), nil
			}
		case json.Number:
			if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
				return i, nil
			}
			if f, err := n.Float64(); err == nil {
				return normalize(s, f)
			}
		}
	case Float:
		switch n := v.(type) {
		case float64:
			if !math.IsNaN(n) && !math.IsInf(n, 0) {
				return n, nil
			}
		case float32:
			return normalize(s, float64(n))
		case int:
			return float64(n), nil
		case int64:
			return float64(n), nil
		case json.Number:
			if f, err := n.Float64(); err == nil {
				return normalize(s, f)
			}
		}
	case String:
		if str, ok := v.(string); ok {
			return str, nil
		}
	case Bindings:
		switch m := v.(type) {
		case map[string]string:
			return maps.Clone(m), nil
		case map[string]any:
			out := make(map[string]string, len(m))
			for k, x := range m {
				str, ok := x.(string)
				if !ok {
					return nil, fmt.Errorf("binding %q: want a string, got %s", k, jsonKind(x))
				}
				out[k] = str
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("want %v, got %s", s.Type, jsonKind(v))
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case float64, float32, int, int64, int32, json.Number:
		return "number"
	case string:
		return "string"
	case map[string]any, map[string]string:
		return "object"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}

// checkValue normalizes v and checks it against s; the error's text is
// the reason shown to players and its chain holds the sentinel.
func checkValue(s *Setting, v any) (any, error) {
	n, err := normalize(s, v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrWrongType, err)
	}
	switch x := n.(type) {
	case int64:
		if s.HasRange && (float64(x) < s.Min || float64(x) > s.Max) {
			return nil, fmt.Errorf("%w: %d outside %s", ErrOutOfRange, x, s.rangeText())
		}
	case float64:
		if s.HasRange && (x < s.Min || x > s.Max) {
			return nil, fmt.Errorf("%w: %s outside %s", ErrOutOfRange, strconv.FormatFloat(x, 'g', -1, 64), s.rangeText())
		}
	case string:
		if len(x) > MaxStringBytes {
			return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(x), MaxStringBytes)
		}
		if !utf8.ValidString(x) {
			return nil, fmt.Errorf("%w: not UTF-8", ErrWrongType)
		}
		if s.Units == UnitLanguage && !langtag.Valid(x) {
			return nil, fmt.Errorf("%w: %q is not a BCP 47 language[-script][-region] tag", ErrNotAllowed, x)
		}
		if s.Units == UnitLanguage {
			n = langtag.Canonical(x)
		}
	case map[string]string:
		if err := checkBindings(x); err != nil {
			return nil, err
		}
	}
	if len(s.Choices) > 0 && !slices.ContainsFunc(s.Choices, func(c Choice) bool { return c.Value == n }) {
		return nil, fmt.Errorf("%w: %v is not one of %s", ErrNotAllowed, n, s.choicesText())
	}
	return n, nil
}

// UnitLanguage is the Units of a String setting that holds a BCP 47
// language tag (language["-"script]["-"region], the subset dialogue
// accepts); values are stored in canonical case ("pt-BR").
const UnitLanguage = "bcp47"

func (s *Setting) rangeText() string {
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	return "[" + f(s.Min) + ", " + f(s.Max) + "]"
}

func (s *Setting) choicesText() string {
	var b bytes.Buffer
	for i, c := range s.Choices {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%v (%s)", c.Value, c.Label)
	}
	return b.String()
}

func checkBindings(m map[string]string) error {
	if len(m) > MaxBindings {
		return fmt.Errorf("%w: %d actions, limit %d", ErrTooLarge, len(m), MaxBindings)
	}
	byKey := make(map[string][]string, len(m))
	for action, key := range m {
		if !validBindingName(action) || !validBindingName(key) {
			return fmt.Errorf("%w: binding %q → %q: names are 1-%d printable ASCII bytes", ErrBindingConflict, action, key, MaxBindingBytes)
		}
		byKey[key] = append(byKey[key], action)
	}
	keys := slices.Sorted(maps.Keys(byKey))
	for _, k := range keys {
		if as := byKey[k]; len(as) > 1 {
			sort.Strings(as)
			return fmt.Errorf("%w: %q bound to %q", ErrBindingConflict, k, as)
		}
	}
	return nil
}

func validBindingName(s string) bool {
	if s == "" || len(s) > MaxBindingBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func cloneValue(v any) any {
	if m, ok := v.(map[string]string); ok {
		return maps.Clone(m)
	}
	return v
}

func equalValue(a, b any) bool {
	ma, ok1 := a.(map[string]string)
	mb, ok2 := b.(map[string]string)
	if ok1 || ok2 {
		return ok1 && ok2 && maps.Equal(ma, mb)
	}
	return a == b
}

// Validate checks values against the schema and returns them normalized
// (int64, float64, bool, string, map[string]string; language tags in
// canonical case). It reports every offending key at once in a
// *[ValidationError]: unknown keys, wrong types, out-of-range values,
// values outside the choices, binding conflicts.
func (s *Schema) Validate(values map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(values))
	var probs []Problem
	for _, k := range slices.Sorted(maps.Keys(values)) {
		st, ok := s.byKey[k]
		if !ok {
			probs = append(probs, Problem{Key: k, Reason: "unknown key", Err: ErrUnknownKey})
			continue
		}
		v, err := checkValue(st, values[k])
		if err != nil {
			probs = append(probs, problem(k, err))
			continue
		}
		out[k] = v
	}
	if probs != nil {
		return nil, &ValidationError{Problems: probs}
	}
	return out, nil
}

// problem turns a checkValue error ("<sentinel>: reason") into a Problem.
func problem(key string, err error) Problem {
	p := Problem{Key: key, Reason: err.Error()}
	for _, s := range []error{ErrWrongType, ErrOutOfRange, ErrNotAllowed, ErrBindingConflict, ErrTooLarge, ErrUnknownKey, ErrServerOnly} {
		if errors.Is(err, s) {
			p.Err = s
			if r, ok := bytes.CutPrefix([]byte(p.Reason), []byte(s.Error()+": ")); ok {
				p.Reason = string(r)
			}
			break
		}
	}
	return p
}
