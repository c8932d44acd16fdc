package dialogue

import (
	"errors"
	"fmt"

	"github.com/bodybroker/sdk/identity"
)

// Sentinel errors. The gRPC and HTTP transports map them to status codes in
// one place (see [Code]); callers of [Service] match them with errors.Is.
var (
	// ErrInvalidRequest: the request is malformed or out of bounds. A
	// *FieldError says which field.
	ErrInvalidRequest = errors.New("dialogue: invalid request")
	// ErrUnknownNPC: no persona is registered under the requested NPC ID.
	ErrUnknownNPC = errors.New("dialogue: unknown NPC")
	// ErrTooLarge: the utterance, context or message exceeds a size limit.
	ErrTooLarge = errors.New("dialogue: request too large")
	// ErrRejected: the moderation hook rejected the player's utterance.
	ErrRejected = errors.New("dialogue: utterance rejected by moderation")
	// ErrUnauthenticated: no credentials, or credentials nobody issued. It
	// is [identity.ErrUnauthenticated], so an Authenticator's errors match
	// it and map to the Unauthenticated code.
	ErrUnauthenticated = identity.ErrUnauthenticated
	// ErrPermissionDenied: the caller may not use this session or speak
	// for this player.
	ErrPermissionDenied = errors.New("dialogue: permission denied")
	// ErrRateLimited: the player has sent too many requests.
	ErrRateLimited = errors.New("dialogue: rate limited")
	// ErrClosed: the service or server is shutting down or shut down.
	ErrClosed = errors.New("dialogue: closed")
	// ErrUnavailable: a dependency the request needs (the conversation
	// store, the moderation hook) failed; retrying later may succeed. The
	// dependency's error is wrapped too, so errors.Is matches both.
	ErrUnavailable = errors.New("dialogue: temporarily unavailable")
	// ErrSessionNotFound: the request names a session the service never
	// issued, or one that has expired. Sessions are issued by the service
	// (Completion.session_id of a request without one); a client cannot
	// choose their IDs.
	ErrSessionNotFound = errors.New("dialogue: session not found")
	// ErrPromptTooLarge: the system part of the prompt and the player's
	// turn do not fit the token budget even without any history.
	ErrPromptTooLarge = errors.New("dialogue: prompt exceeds token budget")
	// ErrInvalidOptions: a constructor or setup helper ([NewServer],
	// [Interceptors], [Service.HTTPHandler], [Service.Register]) was given
	// an invalid options field; the error is an [*OptionsError] naming it.
	ErrInvalidOptions = errors.New("dialogue: invalid options")
)

// OptionsError names the options field a constructor or setup helper
// refused ("HandlerOptions.Authenticator") and why. It matches
// [ErrInvalidOptions] with errors.Is.
type OptionsError struct {
	Field  string
	Reason string
}

func (e *OptionsError) Error() string {
	return "dialogue: invalid " + e.Field + ": " + e.Reason
}

// Is reports whether target is [ErrInvalidOptions].
func (e *OptionsError) Is(target error) bool { return target == ErrInvalidOptions }

// FieldError says which request field is invalid and why. It matches
// [ErrInvalidRequest] (or [ErrTooLarge] for size limits) with errors.Is.
type FieldError struct {
	Field  string
	Reason string
	// TooLarge marks a size-limit violation.
	TooLarge bool
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("dialogue: invalid %s: %s", e.Field, e.Reason)
}

// Is reports whether target is ErrInvalidRequest, or ErrTooLarge for size
// violations.
func (e *FieldError) Is(target error) bool {
	return target == ErrInvalidRequest || (e.TooLarge && target == ErrTooLarge)
}
