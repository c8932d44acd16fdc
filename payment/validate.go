package payment

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on values that players (or the servers acting for them) pass in.
const (
	// MaxIDBytes bounds player, session and request IDs (Stripe's limit
	// on client_reference_id).
	MaxIDBytes = 200
	// MaxEmailBytes bounds CheckoutRequest.Email (Stripe's limit).
	MaxEmailBytes = 512
	// MaxURLBytes bounds success, cancel and return URLs.
	MaxURLBytes = 2048
	// MaxCodeBytes bounds a promotion code, typed or created.
	MaxCodeBytes = 200
	// DefaultMaxTrialDays is the longest free trial a checkout may start
	// when Plan.MaxTrialDays is zero.
	DefaultMaxTrialDays = 30
	// MaxTrialDays is the largest Plan.MaxTrialDays (Stripe's limit).
	MaxTrialDays = 730
)

// printable reports whether s is valid UTF-8 of printable characters
// (letters, marks, numbers, punctuation, symbols and the ASCII space):
// no control characters, no NULs, no line breaks.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// validID checks an ID that is stored, logged and sent to the provider.
func validID(field, id string) error {
	switch {
	case id == "":
		return &ValidationError{Field: field, Reason: "required", Err: ErrInvalidID}
	case len(id) > MaxIDBytes:
		return &ValidationError{Field: field, Reason: fmt.Sprintf("longer than %d bytes", MaxIDBytes), Err: ErrInvalidID}
	case !printable(id):
		return &ValidationError{Field: field, Reason: "not printable UTF-8", Err: ErrInvalidID}
	}
	return nil
}

// validOptionalID checks an ID that may be empty.
func validOptionalID(field, id string) error {
	if id == "" {
		return nil
	}
	return validID(field, id)
}

// validCode reports whether a typed promotion code could be one at all.
func validCode(code string) bool {
	return code != "" && len(code) <= MaxCodeBytes && printable(code)
}

// validRedirect checks a URL the provider sends the player to: absolute
// http or https, printable ASCII without spaces, no user info, at most
// MaxURLBytes, and a host in hosts (when hosts is not empty).
// "{CHECKOUT_SESSION_ID}" is allowed: the provider substitutes it.
func validRedirect(field, raw string, hosts []string) error {
	bad := func(reason string) error {
		return &ValidationError{Field: field, Reason: reason, Err: ErrInvalidURL}
	}
	if raw == "" {
		return bad("required")
	}
	if len(raw) > MaxURLBytes {
		return bad(fmt.Sprintf("longer than %d bytes", MaxURLBytes))
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c <= ' ' || c >= 0x7f {
			return bad("holds spaces, control or non-ASCII characters (percent-encode them)")
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("not a URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return bad("not an absolute http or https URL")
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return bad("no host")
	}
	if u.User != nil {
		return bad("user info is not allowed")
	}
	if len(hosts) > 0 && !hostAllowed(u.Hostname(), hosts) {
		return bad(fmt.Sprintf("host %q is not in Options.RedirectHosts", u.Hostname()))
	}
	return nil
}

// hostAllowed matches host against an allow-list: exact names
// (case-insensitive), or "*.example.com" for any subdomain of it.
func hostAllowed(host string, hosts []string) bool {
	host = strings.ToLower(host)
	for _, h := range hosts {
		h = strings.ToLower(h)
		if suffix, ok := strings.CutPrefix(h, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
			continue
		}
		if host == h {
			return true
		}
	}
	return false
}
