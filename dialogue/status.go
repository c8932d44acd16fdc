package dialogue

import (
	"context"
	"errors"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/dialogue/history"
)

// ErrSlowClient: the client did not accept a reply chunk within the send
// timeout (HandlerOptions.SendTimeout); the call was ended, its backend
// request cancelled and its router slot released. [Code] maps it to
// DeadlineExceeded, though a client that does not read will rarely see it.
var ErrSlowClient = errors.New("dialogue: the client did not accept the reply in time")

// Code maps an error from this package to its gRPC status code. It is the
// one place where errors become codes; both transports use it.
//
//	ErrInvalidRequest, ErrUnknownNPC, ErrTooLarge,
//	ErrRejected, ErrPromptTooLarge            InvalidArgument
//	ErrUnauthenticated                        Unauthenticated
//	ErrPermissionDenied, history.ErrNotOwner  PermissionDenied
//	ErrSessionNotFound                        NotFound
//	ErrRateLimited                            ResourceExhausted
//	context.DeadlineExceeded, ErrSlowClient   DeadlineExceeded
//	context.Canceled                          Canceled
//	ErrClosed, ErrUnavailable                 Unavailable
//	a *status.Status error                    its own code
//	anything else                             Internal
func Code(err error) codes.Code {
	switch {
	case err == nil:
		return codes.OK
	case errors.Is(err, ErrInvalidRequest), errors.Is(err, ErrUnknownNPC), errors.Is(err, ErrTooLarge),
		errors.Is(err, ErrRejected), errors.Is(err, ErrPromptTooLarge):
		return codes.InvalidArgument
	case errors.Is(err, ErrUnauthenticated):
		return codes.Unauthenticated
	case errors.Is(err, ErrPermissionDenied), errors.Is(err, history.ErrNotOwner):
		return codes.PermissionDenied
	case errors.Is(err, ErrSessionNotFound):
		return codes.NotFound
	case errors.Is(err, ErrRateLimited):
		return codes.ResourceExhausted
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrSlowClient):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, ErrClosed), errors.Is(err, ErrUnavailable):
		return codes.Unavailable
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	return codes.Internal
}

// toStatus converts err to a gRPC status error. Internal errors carry no
// detail to the client.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if s, ok := status.FromError(err); ok {
		return s.Err()
	}
	c := Code(err)
	if c == codes.Internal {
		return status.Error(c, "internal error")
	}
	return status.Error(c, err.Error())
}

// errPanic stands for a recovered panic; clients see only Internal.
var errPanic = errors.New("dialogue: internal error")

// turnError is what a Converse stream answers a refused turn with, or nil
// when err must end the stream instead: turns fail for what the player can
// fix or wait out, the stream for what ends the conversation.
func turnError(err error) *dialoguev1.TurnError {
	switch c := Code(err); c {
	case codes.InvalidArgument, codes.NotFound, codes.PermissionDenied, codes.ResourceExhausted, codes.Unavailable:
		return &dialoguev1.TurnError{Code: int32(c), Message: status.Convert(toStatus(err)).Message()}
	}
	return nil
}

// httpStatus is the HTTP status for a gRPC code, as grpc-gateway maps them.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidArgument:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound:
		return http.StatusNotFound
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.Canceled:
		return 499 // client closed request
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.Unimplemented:
		return http.StatusNotImplemented
	default:
		return http.StatusInternalServerError
	}
}
