package payment_test

import (
	"context"
	"errors"
	"testing"

	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/fakepay"
)

func FuzzParseEvent(f *testing.F) {
	for _, s := range []string{
		`{"id":"evt_1","object":"event","type":"invoice.paid","api_version":"2023-10-16","created":1,"data":{"object":{"id":"in_1","object":"invoice"}}}`,
		`{"id":"evt_2","type":"customer.created","data":{}}`,
		`{"id":"evt_3","type":"invoice.paid"}`, `{}`, `[]`, `null`, `{"id":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := payment.ParseEvent(body)
		if err != nil {
			if !errors.Is(err, payment.ErrMalformedEvent) {
				t.Fatalf("ParseEvent error %v does not wrap ErrMalformedEvent", err)
			}
			return
		}
		if ev.ID == "" || ev.Type == "" {
			t.Fatalf("ParseEvent accepted an event without id or type: %+v", ev)
		}
	})
}

// FuzzWebhookProcess feeds arbitrary bodies and headers to the handler:
// nothing panics, and nothing unsigned is ever processed.
func FuzzWebhookProcess(f *testing.F) {
	f.Add([]byte(`{"id":"evt_1","object":"event","type":"customer.subscription.updated","data":{"object":{"id":"sub_1"}}}`), "", true)
	f.Add([]byte(`{"id":"evt_1"}`), "t=1,v1=00", false)
	f.Add([]byte(`not json`), "t=abc,v1=zz,v0=1", true)
	f.Fuzz(func(t *testing.T, body []byte, header string, sign bool) {
		e := newEnv(t, nil)
		if sign {
			header = fakepay.Sign(body, e.clk.Now(), secret)
		}
		res, err := e.svc.Webhooks().Process(context.Background(), body, header)
		if !sign && err == nil {
			t.Fatalf("unsigned body processed: %v", res)
		}
		if sign && (errors.Is(err, payment.ErrBadSignature) || errors.Is(err, payment.ErrTimestampOutOfTolerance)) {
			t.Fatalf("validly signed body rejected: %v", err)
		}
	})
}
