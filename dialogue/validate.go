package dialogue

import (
	"fmt"
	"math"
	"unicode"
	"unicode/utf8"

	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/internal/langtag"
	"github.com/bodybroker/sdk/router"
)

// Field limits that are not configurable.
const (
	maxIDBytes      = 128
	maxContextField = 256
	maxExtraKey     = 64
	maxExtraEntries = 32
)

// Limits bounds what one request may carry and what one reply may hold.
// The zero value means the defaults.
type Limits struct {
	// MaxUtteranceBytes bounds the player's line; 0 means 2,000.
	MaxUtteranceBytes int
	// MaxContextBytes bounds the game context, keys and values together;
	// 0 means 4,096.
	MaxContextBytes int
	// MaxTokens bounds Utterance.max_tokens; 0 means 1,024.
	MaxTokens int
	// MaxMessageBytes bounds one encoded request message on the wire
	// (gRPC and HTTP); 0 means 16 KiB.
	MaxMessageBytes int
	// MaxReplyBytes bounds the text of one NPC reply, whatever the
	// backend streams (max_tokens bounds it in the router, if the backend
	// honours it; this bounds it here even if not). A reply that reaches
	// it ends there, cut at a UTF-8 boundary, with FINISH_REASON_LENGTH:
	// the backend stream is closed and nothing beyond the limit is read
	// on, sent or stored. It bounds the model's text; a [Moderator] that
	// lengthens sentences is trusted not to grow it much. 0 means
	// [DefaultMaxReplyBytes].
	MaxReplyBytes int
}

// DefaultMaxReplyBytes is the default of Limits.MaxReplyBytes: 16 KiB,
// 16 bytes for each of the default Limits.MaxTokens (1,024), far above
// what real tokens average in any script.
const DefaultMaxReplyBytes = 16 << 10

func (l *Limits) defaults() {
	if l.MaxUtteranceBytes <= 0 {
		l.MaxUtteranceBytes = 2000
	}
	if l.MaxContextBytes <= 0 {
		l.MaxContextBytes = 4096
	}
	if l.MaxTokens <= 0 {
		l.MaxTokens = 1024
	}
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = 16 << 10
	}
	if l.MaxReplyBytes <= 0 {
		l.MaxReplyBytes = DefaultMaxReplyBytes
	}
}

// Validate checks an utterance against the limits (after defaults). It
// returns nil or a *[FieldError].
func (l Limits) Validate(u *dialoguev1.Utterance) error {
	l.defaults()
	if u == nil {
		return &FieldError{Field: "utterance", Reason: "missing"}
	}
	if err := checkID("npc_id", u.GetNpcId(), true); err != nil {
		return err
	}
	if err := checkID("session_id", u.GetSessionId(), false); err != nil {
		return err
	}
	if err := checkID("player_id", u.GetPlayerId(), false); err != nil {
		return err
	}
	if err := checkID("tier", u.GetTier(), false); err != nil {
		return err
	}
	if err := checkID("adapter", u.GetAdapter(), false); err != nil {
		return err
	}
	if len(u.GetText()) > l.MaxUtteranceBytes {
		return &FieldError{Field: "text", Reason: fmt.Sprintf("longer than %d bytes", l.MaxUtteranceBytes), TooLarge: true}
	}
	if err := checkText("text", u.GetText(), true); err != nil {
		return err
	}
	resp := u.GetResponsibility()
	if len(resp) > 64 || !isLowerIdent(resp) {
		return &FieldError{Field: "responsibility", Reason: "must be up to 64 bytes of [a-z0-9_]"}
	}
	if u.GetText() == "" && resp != string(router.Greeting) && resp != string(router.Farewell) {
		return &FieldError{Field: "text", Reason: "required unless responsibility is greeting or farewell"}
	}
	if _, ok := dialoguev1.Importance_name[int32(u.GetImportance())]; !ok {
		return &FieldError{Field: "importance", Reason: "unknown value"}
	}
	if n := u.GetMaxTokens(); n < 0 || int(n) > l.MaxTokens {
		return &FieldError{Field: "max_tokens", Reason: fmt.Sprintf("must be in [0, %d]", l.MaxTokens)}
	}
	if u.Temperature != nil {
		if t := u.GetTemperature(); math.IsNaN(t) || t < 0 || t > 2 {
			return &FieldError{Field: "temperature", Reason: "must be in [0, 2]"}
		}
	}
	if lang := u.GetLanguage(); lang != "" && !isLanguageTag(lang) {
		return &FieldError{Field: "language", Reason: "must be a BCP 47 language[-script][-region] tag"}
	}
	return l.validateContext(u.GetContext())
}

func (l Limits) validateContext(c *dialoguev1.GameContext) error {
	if c == nil {
		return nil
	}
	total := 0
	for _, f := range [...]struct{ name, v string }{
		{"context.location", c.GetLocation()},
		{"context.region", c.GetRegion()},
		{"context.quest_step", c.GetQuestStep()},
		{"context.time_of_day", c.GetTimeOfDay()},
		{"context.mood", c.GetMood()},
	} {
		if len(f.v) > maxContextField {
			return &FieldError{Field: f.name, Reason: fmt.Sprintf("longer than %d bytes", maxContextField), TooLarge: true}
		}
		if err := checkText(f.name, f.v, false); err != nil {
			return err
		}
		total += len(f.v)
	}
	if len(c.GetExtra()) > maxExtraEntries {
		return &FieldError{Field: "context.extra", Reason: fmt.Sprintf("more than %d entries", maxExtraEntries), TooLarge: true}
	}
	for k, v := range c.GetExtra() {
		if k == "" || len(k) > maxExtraKey || !isIdent(k) {
			return &FieldError{Field: "context.extra", Reason: fmt.Sprintf("keys must be 1-%d bytes of [A-Za-z0-9._:-]", maxExtraKey)}
		}
		if len(v) > maxContextField {
			return &FieldError{Field: "context.extra." + k, Reason: fmt.Sprintf("longer than %d bytes", maxContextField), TooLarge: true}
		}
		if err := checkText("context.extra."+k, v, false); err != nil {
			return err
		}
		total += len(k) + len(v)
	}
	if total > l.MaxContextBytes {
		return &FieldError{Field: "context", Reason: fmt.Sprintf("larger than %d bytes", l.MaxContextBytes), TooLarge: true}
	}
	return nil
}

func checkID(field, v string, required bool) error {
	if v == "" {
		if required {
			return &FieldError{Field: field, Reason: "required"}
		}
		return nil
	}
	if len(v) > maxIDBytes || !isIdent(v) {
		return &FieldError{Field: field, Reason: fmt.Sprintf("must be 1-%d bytes of [A-Za-z0-9._:-]", maxIDBytes)}
	}
	return nil
}

// checkText accepts valid UTF-8 without control characters; newlines and
// tabs are allowed only where multiline is set.
func checkText(field, v string, multiline bool) error {
	if !utf8.ValidString(v) {
		return &FieldError{Field: field, Reason: "not valid UTF-8"}
	}
	for _, r := range v {
		if multiline && (r == '\n' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError {
			return &FieldError{Field: field, Reason: "contains control characters"}
		}
	}
	return nil
}

func isIdent(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func isLowerIdent(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// isLanguageTag accepts the subset of BCP 47 that names a language
// ([langtag.Valid]). The tag is written into the system part of the
// prompt, so variants, extensions and private-use subtags, which would let
// a client spell out words there, are refused.
func isLanguageTag(s string) bool { return langtag.Valid(s) }

// canonicalLanguage returns a tag accepted by isLanguageTag in its
// canonical case: "pt-br" becomes "pt-BR", "ZH-hant" "zh-Hant".
func canonicalLanguage(s string) string { return langtag.Canonical(s) }
