package payment

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Provider and store errors wrap them so callers can use
// errors.Is.
var (
	// ErrNotFound: the object does not exist (at the provider or in the store).
	ErrNotFound = errors.New("payment: not found")
	// ErrInvalidCode: a promotion code typed by a player is unknown,
	// inactive, expired, used up or malformed. Checkout returns exactly
	// this error for all of them, so that guessing learns nothing;
	// operators see the reason in an [*InvalidCodeError] from
	// [Admin.CheckPromotionCode], and the Service logs it at debug level.
	ErrInvalidCode = errors.New("payment: invalid promotion code")
	// ErrCodeRateLimited: a player tried too many promotion codes
	// (Options.CodeLimit); the error is a [*CodeRateLimitError] that says
	// when to try again. It does not match ErrRateLimited, which is the
	// provider's signal to back off and retry.
	ErrCodeRateLimited = errors.New("payment: too many promotion code attempts")
	// ErrInvalidURL: a success, cancel or return URL is not an absolute
	// http(s) URL, or its host is not in Options.RedirectHosts.
	ErrInvalidURL = errors.New("payment: invalid redirect URL")
	// ErrInvalidID: a player, session or request ID is empty, too long
	// (MaxIDBytes), not UTF-8 or holds unprintable characters.
	ErrInvalidID = errors.New("payment: invalid ID")
	// ErrTrialTooLong: a checkout asked for a longer free trial than its
	// plan allows (Plan.MaxTrialDays).
	ErrTrialTooLong = errors.New("payment: trial too long")
	// ErrUnknownPrice: the price is not in the configured plans.
	ErrUnknownPrice = errors.New("payment: unknown price")
	// ErrInvalidRequest: the provider rejected the request's parameters.
	ErrInvalidRequest = errors.New("payment: invalid request")
	// ErrCardDeclined: the provider declined a payment.
	ErrCardDeclined = errors.New("payment: card declined")
	// ErrRateLimited: the provider asked us to slow down.
	ErrRateLimited = errors.New("payment: rate limited")
	// ErrAuthentication: the provider rejected the API key.
	ErrAuthentication = errors.New("payment: provider authentication failed")
	// ErrIdempotency: an idempotency key was reused with other parameters.
	ErrIdempotency = errors.New("payment: idempotency key reused with different parameters")
	// ErrProviderUnavailable: the provider failed or could not be reached;
	// the call may be retried.
	ErrProviderUnavailable = errors.New("payment: provider unavailable")

	// ErrBadSignature: a webhook's signature header is missing, malformed
	// or matches none of the configured secrets.
	ErrBadSignature = errors.New("payment: bad webhook signature")
	// ErrTimestampOutOfTolerance: a webhook's signed timestamp is too old or
	// too far in the future.
	ErrTimestampOutOfTolerance = errors.New("payment: webhook timestamp outside tolerance")
	// ErrPayloadTooLarge: a webhook body exceeds Options.MaxWebhookBytes.
	ErrPayloadTooLarge = errors.New("payment: webhook body too large")
	// ErrMalformedEvent: a webhook body is not a provider event.
	ErrMalformedEvent = errors.New("payment: malformed webhook event")
	// ErrEventInProgress: another worker (or server) holds the claim on
	// this event and is processing it; the delivery is not acknowledged,
	// so the provider retries it later.
	ErrEventInProgress = errors.New("payment: event is being processed elsewhere")
	// ErrAPIVersionMismatch: an event was rendered in an API version other
	// than the provider's, and Options.RejectAPIVersionMismatch is set.
	ErrAPIVersionMismatch = errors.New("payment: event API version mismatch")
)

// ProviderError carries the provider's detail for a failed call. It wraps
// one of the sentinel errors above (Kind).
type ProviderError struct {
	Op         string // the provider operation, e.g. "checkout.create"
	Kind       error  // a sentinel such as ErrNotFound
	HTTPStatus int
	Code       string // the provider's error code, e.g. "resource_missing"
	Message    string
	RequestID  string
}

func (e *ProviderError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%v: %s: %s (%s, http %d, request %s)", e.Kind, e.Op, e.Message, e.Code, e.HTTPStatus, e.RequestID)
	}
	return fmt.Sprintf("%v: %s: %s (http %d, request %s)", e.Kind, e.Op, e.Message, e.HTTPStatus, e.RequestID)
}

// Unwrap returns Kind.
func (e *ProviderError) Unwrap() error { return e.Kind }

// ValidationError reports a bad argument to an SDK call, before anything
// was sent to the provider.
type ValidationError struct {
	Field  string
	Reason string
	// Err, if set, is a more specific sentinel (ErrInvalidURL,
	// ErrInvalidID, ErrTrialTooLong).
	Err error
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("payment: invalid %s: %s", e.Field, e.Reason)
}

// Unwrap returns ErrInvalidRequest and Err, if set.
func (e *ValidationError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrInvalidRequest}
	}
	return []error{ErrInvalidRequest, e.Err}
}

// CodeProblem says why a promotion code cannot be redeemed.
type CodeProblem string

// Reasons a promotion code is refused.
const (
	CodeUnknown   CodeProblem = "unknown"   // no active code with this text
	CodeExpired   CodeProblem = "expired"   // past its ExpiresAt
	CodeUsedUp    CodeProblem = "used up"   // MaxRedemptions reached
	CodeMalformed CodeProblem = "malformed" // empty, longer than MaxCodeBytes or unprintable
)

// InvalidCodeError is the detailed reason a promotion code was refused.
// Only [Admin.CheckPromotionCode] returns it; players get plain
// [ErrInvalidCode], the same for every reason. It wraps ErrInvalidCode.
type InvalidCodeError struct {
	Code    string
	Problem CodeProblem
}

func (e *InvalidCodeError) Error() string {
	return fmt.Sprintf("payment: promotion code %q: %s", e.Code, e.Problem)
}

// Unwrap returns ErrInvalidCode.
func (e *InvalidCodeError) Unwrap() error { return ErrInvalidCode }

// CodeRateLimitError refuses a promotion code from a player who has
// tried too many (Options.CodeLimit). It wraps ErrCodeRateLimited.
type CodeRateLimitError struct {
	// RetryAfter is how long until the player may try one more code.
	RetryAfter time.Duration
}

func (e *CodeRateLimitError) Error() string {
	return fmt.Sprintf("%v: try again in %v", ErrCodeRateLimited, e.RetryAfter.Round(time.Second))
}

// Unwrap returns ErrCodeRateLimited.
func (e *CodeRateLimitError) Unwrap() error { return ErrCodeRateLimited }
