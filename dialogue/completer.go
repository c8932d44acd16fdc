package dialogue

import (
	"context"

	"github.com/bodybroker/sdk/router"
)

// Completer is what the service needs from the router: a streamed
// completion. [RouterCompleter] adapts a *router.Router; tests and studios
// may supply their own. Implementations must be safe for concurrent use.
//
// Stream returns an error only when nothing was generated; the service then
// answers with a fallback line. Cancelling ctx must cancel the backend
// request.
type Completer interface {
	Stream(ctx context.Context, req router.Request) (CompletionStream, error)
}

// CompletionStream is a completion in progress: Recv returns the next delta
// and io.EOF after the last; Close releases it (safe to call more than
// once); Receipt says how it was routed.
type CompletionStream interface {
	Recv() (router.Delta, error)
	Close() error
	Receipt() router.Receipt
}

// RouterCompleter adapts a *router.Router to [Completer].
func RouterCompleter(r *router.Router) Completer { return routerCompleter{r} }

type routerCompleter struct{ r *router.Router }

func (c routerCompleter) Stream(ctx context.Context, req router.Request) (CompletionStream, error) {
	s, err := c.r.Stream(ctx, req)
	if err != nil {
		return nil, err // never a typed nil
	}
	return s, nil
}

var _ CompletionStream = (*router.RoutedStream)(nil)
