package dialogue_test

import (
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/bodybroker/sdk/dialogue"
)

// TestKeepaliveEnforcement: a client that pings more often than
// ServerOptions.KeepaliveMinTime allows is sent GOAWAY ENHANCE_YOUR_CALM
// ("too_many_pings"), as grpc-go's enforcement policy specifies. The test
// speaks raw HTTP/2, since grpc-go clients refuse to ping that often.
func TestKeepaliveEnforcement(t *testing.T) {
	svc := newService(t, &fakeCompleter{respond: replying("x")}, nil)
	srv, err := dialogue.NewServer(svc, dialogue.ServerOptions{Authenticator: testAuth(t), Insecure: true, KeepaliveMinTime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() { _ = srv.Close(); <-served }()

	conn, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("connection ended without GOAWAY: %v", err)
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeEnhanceYourCalm || string(ga.DebugData()) != "too_many_pings" {
				t.Errorf("GOAWAY %v %q, want ENHANCE_YOUR_CALM too_many_pings", ga.ErrCode, ga.DebugData())
			}
			return
		}
		if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
			_ = fr.WriteSettingsAck()
		}
	}
}
