package payment

import (
	"reflect"
	"testing"
)

// TestCheckoutKeyCoversEveryParameter: changing any field of a checkout
// request (but the key itself) changes its idempotency key, so a
// different request never replays another's session or trips the
// provider's idempotency check. A field added to CheckoutParams later
// fails this test until checkoutKey covers it.
func TestCheckoutKeyCoversEveryParameter(t *testing.T) {
	base := CheckoutParams{
		Mode: ModeSubscription, PriceID: "price_1", Quantity: 1, CustomerID: "cus_1", ClientReferenceID: "p1",
		PromotionCodeID: "promo_1", SuccessURL: "https://g/ok", CancelURL: "https://g/no",
		Metadata: map[string]string{MetaPlayerID: "p1", MetaAmbassadorID: "amb_1"}, TrialDays: 7,
	}
	key := checkoutKey(base, "n1")
	if again := checkoutKey(base, "n1"); again != key {
		t.Fatalf("key not deterministic: %s, %s", key, again)
	}
	if other := checkoutKey(base, "n2"); other == key {
		t.Fatal("another nonce gave the same key")
	}
	rt := reflect.TypeFor[CheckoutParams]()
	for i := range rt.NumField() {
		f := rt.Field(i)
		if f.Name == "IdempotencyKey" {
			continue
		}
		p := base
		p.Metadata = map[string]string{MetaPlayerID: "p1", MetaAmbassadorID: "amb_1"}
		v := reflect.ValueOf(&p).Elem().Field(i)
		switch v.Kind() {
		case reflect.String:
			v.SetString(v.String() + "x")
		case reflect.Int64:
			v.SetInt(v.Int() + 1)
		case reflect.Bool:
			v.SetBool(!v.Bool())
		case reflect.Map:
			p.Metadata[MetaAmbassadorID] = "amb_2"
		default:
			t.Fatalf("field %s of kind %s: teach this test to change it", f.Name, v.Kind())
		}
		if got := checkoutKey(p, "n1"); got == key {
			t.Errorf("changing %s kept the key %s", f.Name, key)
		}
	}
	if n := len(key); n > 255 {
		t.Fatalf("key has %d bytes, Stripe allows 255", n)
	}
}
