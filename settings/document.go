package settings

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
)

// Document is a whole settings document as clients and tools exchange it:
// {"version": 2, "values": {"audio.music": 0.5, ...}}.
type Document struct {
	Version int            `json:"version"`
	Values  map[string]any `json:"values"`
}

// Migrate runs the migrations that bring values from schema version
// `from` (0 counts as 1) to the current version and returns the result;
// values is not modified. Values are JSON-decoded Go values; keys the
// migrations do not touch, known or not, are kept as they are. A version
// above the schema's is an error wrapping ErrMalformed: a newer server
// wrote it.
func (s *Schema) Migrate(from int, values map[string]any) (map[string]any, error) {
	if from > s.version {
		return nil, fmt.Errorf("%w: document version %d is newer than schema version %d", ErrMalformed, from, s.version)
	}
	out := deepCopyJSON(values)
	for v := max(from, 1); v < s.version; v++ {
		if err := s.migrations[v](out); err != nil {
			return nil, fmt.Errorf("settings: migration from version %d: %w", v, err)
		}
	}
	return out, nil
}

func deepCopyJSON(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = deepCopyJSON(sub)
		}
		out[k] = v
	}
	return out
}

// DecodeDocument parses a client's document of at most maxBytes (0
// means DefaultMaxDocumentBytes), migrates it to the current version and
// validates it. Every problem is reported at once: oversize input
// (ErrTooLarge), malformed JSON or a version newer than the schema
// (ErrMalformed), then a *ValidationError listing each unknown key, wrong
// type and out-of-range value. The returned values are normalized.
func (s *Schema) DecodeDocument(b []byte, maxBytes int) (map[string]any, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxDocumentBytes
	}
	if len(b) > maxBytes {
		return nil, fmt.Errorf("%w: document of %d bytes, limit %d", ErrTooLarge, len(b), maxBytes)
	}
	var d Document
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the document", ErrMalformed)
	}
	if d.Version < 0 {
		return nil, fmt.Errorf("%w: version %d", ErrMalformed, d.Version)
	}
	values, err := s.Migrate(d.Version, d.Values)
	if err != nil {
		return nil, err
	}
	return s.Validate(values)
}

// EncodeDocument returns values as a current-version Document in JSON,
// keys sorted.
func (s *Schema) EncodeDocument(values map[string]any) ([]byte, error) {
	return json.Marshal(Document{Version: s.version, Values: maps.Clone(values)})
}
