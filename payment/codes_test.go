package payment_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bodybroker/sdk/payment"
	"github.com/bodybroker/sdk/payment/fakepay"
)

// TestCodeGuessingIsThrottled: a player guessing codes gets Burst tries
// (one provider lookup each at most), then a rate-limit error with no
// lookup at all; another player is not affected, and valid codes do not
// use up the budget.
func TestCodeGuessingIsThrottled(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	setupAmbassador(t, e)
	const guesses = 309
	var invalid, limited int
	for i := range guesses {
		_, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "guesser", Plan: "basic", Code: fmt.Sprintf("GUESS%03d", i)})
		var rl *payment.CodeRateLimitError
		switch {
		case errors.Is(err, payment.ErrInvalidCode):
			invalid++
		case errors.As(err, &rl) && errors.Is(err, payment.ErrCodeRateLimited):
			limited++
			if rl.RetryAfter <= 0 || rl.RetryAfter > payment.DefaultCodeEvery {
				t.Fatalf("RetryAfter = %v, want in (0, %v]", rl.RetryAfter, payment.DefaultCodeEvery)
			}
		default:
			t.Fatalf("guess %d: %v, want ErrInvalidCode or a rate limit", i, err)
		}
	}
	lookups := e.fake.Calls("ListPromotionCodes")
	t.Logf("%d guesses: %d refused as invalid, %d rate limited, %d provider lookups", guesses, invalid, limited, lookups)
	if invalid != payment.DefaultCodeBurst || limited != guesses-payment.DefaultCodeBurst {
		t.Fatalf("invalid = %d, limited = %d; want %d and %d", invalid, limited, payment.DefaultCodeBurst, guesses-payment.DefaultCodeBurst)
	}
	if lookups > payment.DefaultCodeBurst {
		t.Fatalf("provider lookups = %d, want at most %d", lookups, payment.DefaultCodeBurst)
	}
	// Even a valid code is refused to the limited player, before any lookup.
	if _, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "guesser", Plan: "basic", Code: "ALICE"}); !errors.Is(err, payment.ErrCodeRateLimited) {
		t.Fatalf("limited player with a valid code: %v, want ErrCodeRateLimited", err)
	}
	// Another player is not limited, and valid codes cost no budget.
	for i := range 3 * payment.DefaultCodeBurst {
		if _, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "honest", Plan: "basic", Code: "ALICE", RequestID: fmt.Sprint("r", i)}); err != nil {
			t.Fatalf("honest player's checkout %d: %v", i, err)
		}
	}
	// One more try per DefaultCodeEvery.
	e.clk.Add(payment.DefaultCodeEvery)
	if _, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "guesser", Plan: "basic", Code: "GUESS999"}); !errors.Is(err, payment.ErrInvalidCode) {
		t.Fatalf("guess after a minute: %v, want ErrInvalidCode", err)
	}
	if _, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "guesser", Plan: "basic", Code: "GUESS998"}); !errors.Is(err, payment.ErrCodeRateLimited) {
		t.Fatalf("second guess after a minute: %v, want ErrCodeRateLimited", err)
	}
}

// TestCodeLimitIsConfigurable runs on the default clock inside a
// synctest bubble: time.Sleep moves the fake time the limiter reads.
func TestCodeLimitIsConfigurable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := newFake(t, nil)
		svc, err := payment.New(payment.Options{
			Provider: fake, Plans: plans(), WebhookSecrets: []payment.Secret{secret},
			DefaultSuccessURL: "https://game.example/paid", DefaultCancelURL: "https://game.example/cancel",
			CodeLimit: payment.CodeLimit{Burst: 2, Every: time.Hour}, Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		try := func(code string) error {
			_, err := svc.Checkout().Start(context.Background(), payment.CheckoutRequest{PlayerID: "p1", Plan: "basic", Code: code})
			return err
		}
		for _, c := range []string{"A1", "A2"} {
			if err := try(c); !errors.Is(err, payment.ErrInvalidCode) {
				t.Fatalf("try %s: %v, want ErrInvalidCode", c, err)
			}
		}
		err = try("A3")
		var rl *payment.CodeRateLimitError
		if !errors.As(err, &rl) || rl.RetryAfter != time.Hour {
			t.Fatalf("third try: %v, want a rate limit with RetryAfter 1h", err)
		}
		time.Sleep(time.Hour - time.Second)
		if err := try("A4"); !errors.Is(err, payment.ErrCodeRateLimited) {
			t.Fatalf("try a second early: %v, want ErrCodeRateLimited", err)
		}
		time.Sleep(time.Second)
		if err := try("A5"); !errors.Is(err, payment.ErrInvalidCode) {
			t.Fatalf("try after an hour: %v, want ErrInvalidCode", err)
		}
	})
	if _, err := payment.New(payment.Options{Provider: newFake(t, nil), Plans: plans(), WebhookSecrets: []payment.Secret{secret},
		CodeLimit: payment.CodeLimit{Burst: -1}}); !errors.Is(err, payment.ErrInvalidRequest) {
		t.Fatalf("negative burst: %v, want ErrInvalidRequest", err)
	}
}

// TestInvalidCodeErrorsAreUniform: unknown, expired, used-up and
// malformed codes give players one and the same error; the operator's
// CheckPromotionCode tells them apart.
func TestInvalidCodeErrorsAreUniform(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	a := e.svc.Admin()
	cpn, err := a.CreateCoupon(ctx, payment.CouponParams{PercentOff: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreatePromotionCode(ctx, payment.PromotionCodeParams{CouponID: cpn.ID, Code: "OLD", ExpiresAt: e.clk.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	once, err := a.CreatePromotionCode(ctx, payment.PromotionCodeParams{CouponID: cpn.ID, Code: "ONCE", MaxRedemptions: 1})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: "first", Plan: "basic", Code: once.Code})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.fake.CompleteCheckout(res.SessionID, fakepay.CompleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(2 * time.Hour) // OLD expires
	tests := []struct {
		code    string
		problem payment.CodeProblem
	}{
		{"NOPE", payment.CodeUnknown},
		{"OLD", payment.CodeExpired},
		{"ONCE", payment.CodeUsedUp},
		{"BAD\x00CODE", payment.CodeMalformed},
		{strings.Repeat("X", payment.MaxCodeBytes+1), payment.CodeMalformed},
	}
	for i, tt := range tests {
		_, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: fmt.Sprint("p", i), Plan: "basic", Code: tt.code})
		if err != payment.ErrInvalidCode { // exactly the sentinel: nothing more may leak
			t.Errorf("player's error for a code that is %s = %#v, want exactly payment.ErrInvalidCode", tt.problem, err)
		}
		_, err = a.CheckPromotionCode(ctx, tt.code)
		var ice *payment.InvalidCodeError
		if !errors.As(err, &ice) || ice.Problem != tt.problem || !errors.Is(err, payment.ErrInvalidCode) {
			t.Errorf("CheckPromotionCode(%.10q) = %v, want an InvalidCodeError with problem %q", tt.code, err, tt.problem)
		}
	}
	if _, err := a.CreatePromotionCode(ctx, payment.PromotionCodeParams{CouponID: cpn.ID, Code: "FINE"}); err != nil {
		t.Fatal(err)
	}
	if pc, err := a.CheckPromotionCode(ctx, "fine"); err != nil || pc.Code != "FINE" {
		t.Fatalf("CheckPromotionCode(fine) = %+v, %v", pc, err)
	}
}

// TestCodeLookupsAreCached: a repeated code, known or not, is looked up
// at the provider once per CodeCacheTTL; an operator's new code is not
// hidden by a cached miss.
func TestCodeLookupsAreCached(t *testing.T) {
	e := newEnv(t, func(o *payment.Options) { o.CodeCacheTTL = time.Minute })
	ctx := context.Background()
	setupAmbassador(t, e)
	start := func(player, code string) error {
		_, err := e.svc.Checkout().Start(ctx, payment.CheckoutRequest{PlayerID: player, Plan: "basic", Code: code, RequestID: player + code})
		return err
	}
	lookups := func() int { return e.fake.Calls("ListPromotionCodes") }
	for i := range 4 {
		if err := start(fmt.Sprint("p", i), "nope"); !errors.Is(err, payment.ErrInvalidCode) {
			t.Fatalf("unknown code: %v", err)
		}
		if err := start(fmt.Sprint("p", i), "alice"); err != nil {
			t.Fatalf("valid code: %v", err)
		}
	}
	if got := lookups(); got != 2 {
		t.Fatalf("provider lookups for 8 tries of 2 codes = %d, want 2", got)
	}
	e.clk.Add(time.Minute - time.Second)
	if err := start("p9", "NOPE"); !errors.Is(err, payment.ErrInvalidCode) {
		t.Fatalf("unknown code: %v", err)
	}
	if got := lookups(); got != 2 {
		t.Fatalf("provider lookups within the TTL = %d, want 2", got)
	}
	e.clk.Add(time.Second)
	if err := start("p10", "NOPE"); !errors.Is(err, payment.ErrInvalidCode) {
		t.Fatalf("unknown code: %v", err)
	}
	if got := lookups(); got != 3 {
		t.Fatalf("provider lookups after the TTL = %d, want 3", got)
	}
	// The operator creates the code that was a cached miss.
	cpn, err := e.svc.Admin().CreateCoupon(ctx, payment.CouponParams{PercentOff: 5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Admin().CreatePromotionCode(ctx, payment.PromotionCodeParams{CouponID: cpn.ID, Code: "NOPE"}); err != nil {
		t.Fatal(err)
	}
	if err := start("p11", "nope"); err != nil {
		t.Fatalf("code created after a cached miss: %v", err)
	}
}

// TestConcurrentGuessesShareOneBudget: concurrent guesses by one player
// get exactly Burst tries between them.
func TestConcurrentGuessesShareOneBudget(t *testing.T) {
	e := newEnv(t, nil)
	var mu sync.Mutex
	var invalid int
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				_, err := e.svc.Checkout().Start(context.Background(), payment.CheckoutRequest{PlayerID: "guesser", Plan: "basic", Code: fmt.Sprintf("G%d-%d", g, i)})
				switch {
				case errors.Is(err, payment.ErrInvalidCode):
					mu.Lock()
					invalid++
					mu.Unlock()
				case !errors.Is(err, payment.ErrCodeRateLimited):
					t.Errorf("guess: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if invalid != payment.DefaultCodeBurst {
		t.Fatalf("guesses refused as invalid = %d, want %d (the rest rate limited)", invalid, payment.DefaultCodeBurst)
	}
	if got := e.fake.Calls("ListPromotionCodes"); got > payment.DefaultCodeBurst {
		t.Fatalf("provider lookups = %d, want at most %d", got, payment.DefaultCodeBurst)
	}
}
