package payment

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"testing"
	"time"
)

func sigFor(payload []byte, secret string, ts int64) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(ts, 10) + "."))
	mac.Write(payload)
	return hex.EncodeToString(mac.Sum(nil))
}

// TestVerifySignatureEdges covers the header forms and the tolerance
// boundaries in both directions.
func TestVerifySignatureEdges(t *testing.T) {
	body := []byte(`{"id":"evt_1","type":"invoice.paid"}`)
	now := time.Unix(1_800_000_000, 0)
	tol := 5 * time.Minute
	secrets := []Secret{"whsec_old", "whsec_new"}
	ts := now.Unix()
	good := sigFor(body, "whsec_new", ts)
	old := sigFor(body, "whsec_old", ts)
	other := sigFor(body, "whsec_other", ts)
	at := func(d time.Duration, secret string) string {
		u := now.Add(d).Unix()
		return "t=" + strconv.FormatInt(u, 10) + ",v1=" + sigFor(body, secret, u)
	}
	tests := []struct {
		name   string
		header string
		want   error
	}{
		{"current secret", "t=" + strconv.FormatInt(ts, 10) + ",v1=" + good, nil},
		{"old secret during rotation", "t=" + strconv.FormatInt(ts, 10) + ",v1=" + old, nil},
		{"unknown then valid signature", "t=" + strconv.FormatInt(ts, 10) + ",v1=" + other + ",v1=" + good, nil},
		{"valid then unknown signature", "t=" + strconv.FormatInt(ts, 10) + ",v1=" + good + ",v1=" + other, nil},
		{"spaces and a v0 test signature", " t=" + strconv.FormatInt(ts, 10) + " , v0=" + other + " , v1=" + good, nil},
		{"only a v0 signature", "t=" + strconv.FormatInt(ts, 10) + ",v0=" + good, ErrBadSignature},
		{"truncated v1", "t=" + strconv.FormatInt(ts, 10) + ",v1=" + good[:60], ErrBadSignature},
		{"non-hex v1", "t=" + strconv.FormatInt(ts, 10) + ",v1=zz" + good[2:], ErrBadSignature},
		{"no timestamp", "v1=" + good, ErrBadSignature},
		{"timestamp not a number", "t=soon,v1=" + good, ErrBadSignature},
		{"signature for another timestamp", "t=" + strconv.FormatInt(ts+1, 10) + ",v1=" + good, ErrBadSignature},
		{"second t= replaces the signed one", "t=" + strconv.FormatInt(ts, 10) + ",t=" + strconv.FormatInt(ts+1, 10) + ",v1=" + good, ErrBadSignature},
		{"only an unknown secret", "t=" + strconv.FormatInt(ts, 10) + ",v1=" + other, ErrBadSignature},
		{"exactly tolerance old", at(-tol, "whsec_new"), nil},
		{"exactly tolerance ahead", at(tol, "whsec_new"), nil},
		{"a second too old", at(-tol-time.Second, "whsec_new"), ErrTimestampOutOfTolerance},
		{"a second too far ahead", at(tol+time.Second, "whsec_new"), ErrTimestampOutOfTolerance},
		{"year 292277026596", "t=9223372036854775807,v1=" + sigFor(body, "whsec_new", 9223372036854775807), ErrTimestampOutOfTolerance},
		{"before 1970", "t=-1,v1=" + sigFor(body, "whsec_new", -1), ErrTimestampOutOfTolerance},
		// A stale timestamp with a bad signature is a bad signature: the
		// timestamp is only trusted once the signature covers it.
		{"stale and unsigned", "t=1,v1=" + other, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifySignature(body, tt.header, secrets, tol, now)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("verifySignature(%q) = %v, want %v", tt.header, err, tt.want)
			}
		})
	}
}
