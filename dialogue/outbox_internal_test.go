package dialogue

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestOutboxSendTimeout: a send the client does not take within the
// timeout fails with ErrSlowClient and is counted once; every later send
// fails at once; sends the client takes in time return their own result;
// the writer ends once the blocked send returns and the outbox is closed.
func TestOutboxSendTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := &Service{}
		errClient := errors.New("client gone")
		release := make(chan struct{})
		var sent []int
		send := func(m *int) error {
			switch *m {
			case 2:
				return errClient
			case 3:
				<-release // a client that stopped reading
			}
			sent = append(sent, *m)
			return nil
		}
		o := newOutbox(svc, 10*time.Second, send)
		defer o.close()
		one, two, three, four := 1, 2, 3, 4
		if err := o.send(&one); err != nil {
			t.Fatalf("send 1 = %v", err)
		}
		if err := o.send(&two); err != errClient {
			t.Fatalf("send 2 = %v, want the stream's own error", err)
		}
		start := time.Now()
		if err := o.send(&three); !errors.Is(err, ErrSlowClient) {
			t.Fatalf("send 3 = %v, want ErrSlowClient", err)
		}
		if got := time.Since(start); got != 10*time.Second {
			t.Errorf("send 3 gave up after %v, want the 10s timeout", got)
		}
		if err := o.send(&four); !errors.Is(err, ErrSlowClient) {
			t.Errorf("send after a stall = %v, want ErrSlowClient at once", err)
		}
		if got := svc.slowClients.Load(); got != 1 {
			t.Errorf("slowClients = %d, want 1", got)
		}
		close(release) // the stream ends; the writer's Send returns
		synctest.Wait()
		if len(sent) != 2 || sent[0] != 1 || sent[1] != 3 {
			t.Errorf("the stream got %v, want [1 3]", sent)
		}
	})
}
