package eventbus_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/bodybroker/sdk/eventbus"
)

// refusingTransport refuses every Subscribe, once release is closed.
type refusingTransport struct {
	entered, release chan struct{}
}

var errRefused = errors.New("transport refused the subscription")

func (t *refusingTransport) Publish(context.Context, []eventbus.Event) error { return nil }
func (t *refusingTransport) Subscribe(context.Context, eventbus.SubscribeRequest, eventbus.Sink) (eventbus.TransportSubscription, error) {
	close(t.entered)
	<-t.release
	return nil, errRefused
}
func (t *refusingTransport) History(context.Context, string, eventbus.Position, int) ([]eventbus.Event, error) {
	return nil, eventbus.ErrNotSupported
}
func (t *refusingTransport) Features() eventbus.Features    { return eventbus.Features{} }
func (t *refusingTransport) Stats() eventbus.TransportStats { return eventbus.TransportStats{} }
func (t *refusingTransport) Close() error                   { return nil }

// A Subscribe the transport refuses while the bus is closing must not
// leave Close waiting forever for a subscription that never started.
func TestCloseWhileSubscribeFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := &refusingTransport{entered: make(chan struct{}), release: make(chan struct{})}
		b, err := eventbus.New(eventbus.Options{Transport: tr})
		if err != nil {
			t.Fatal(err)
		}
		subErr := make(chan error, 1)
		go func() {
			_, err := b.Subscribe(context.Background(), "t", func(context.Context, eventbus.Event) error { return nil }, eventbus.SubscribeOptions{})
			subErr <- err
		}()
		<-tr.entered // registered with the bus, waiting on the transport
		closed := make(chan error, 1)
		go func() { closed <- b.Close() }()
		synctest.Wait() // Close has listed the subscription and waits for it
		close(tr.release)
		if err := <-subErr; !errors.Is(err, errRefused) {
			t.Errorf("Subscribe = %v, want the transport's refusal", err)
		}
		<-closed // hangs (synctest reports a deadlock) if Close waits for a subscription that never started
	})
}
