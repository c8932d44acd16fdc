package dialogue_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/bodybroker/sdk/dialogue"
	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/identity"
	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/scripted"
)

// exampleService builds a service over a router whose only tier is a
// scripted model, so the examples are deterministic.
func exampleService() (*dialogue.Service, func()) {
	lines, err := scripted.New(scripted.Options{NPCLines: map[string][]string{
		"mara": {"The tide turns at dusk. Be at the pier."},
	}})
	if err != nil {
		panic(err)
	}
	r, err := router.New(router.Options{Tiers: []router.Tier{{Name: "scripted", Replicas: []router.Replica{{Name: "lines", Model: lines}}}}})
	if err != nil {
		panic(err)
	}
	personas, err := dialogue.NewPersonas(dialogue.Persona{
		ID: "mara", Name: "Mara", SystemPrompt: "A dockside fence who trusts no one.",
		Importance: router.Elite, FallbackLines: []string{"Not now. Come back later."},
	})
	if err != nil {
		panic(err)
	}
	svc, err := dialogue.New(dialogue.Options{Completer: dialogue.RouterCompleter(r), Personas: personas})
	if err != nil {
		panic(err)
	}
	return svc, func() { _ = r.Close() }
}

// Embedding the dialogue service in a studio's own gRPC server: install the
// interceptors (they only touch the dialogue service's methods) and register
// the service next to the studio's own.
func ExampleService_Register() {
	svc, closeRouter := exampleService()
	defer closeRouter()

	auth, err := identity.NewTokenAuthenticator(map[identity.Token]identity.Identity{
		"player-7-secret-token": {Kind: identity.KindPlayer, ID: "player-7"},
	})
	if err != nil {
		panic(err)
	}
	opts := dialogue.HandlerOptions{Authenticator: auth}
	unary, stream, err := dialogue.Interceptors(opts)
	if err != nil {
		panic(err)
	}
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(unary), grpc.ChainStreamInterceptor(stream),
		grpc.MaxRecvMsgSize(svc.MaxRecvMsgSize()))
	if err := svc.Register(gs, opts); err != nil {
		panic(err)
	}
	// ... register the studio's own services on gs here ...

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	served := make(chan struct{})
	go func() { _ = gs.Serve(lis); close(served) }()
	defer func() { gs.Stop(); <-served }()

	// A client written only from the .proto.
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := dialoguev1.NewDialogueServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer player-7-secret-token")
	st, err := client.StreamSay(ctx, &dialoguev1.StreamSayRequest{Utterance: &dialoguev1.Utterance{NpcId: "mara", Text: "When does the boat leave?"}})
	if err != nil {
		panic(err)
	}
	for {
		m, err := st.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		c := m.GetChunk()
		if c.GetFinal() {
			fmt.Println("finish:", c.GetCompletion().GetFinishReason(), "fallback:", c.GetCompletion().GetFallback())
			continue
		}
		fmt.Printf("%q sentence_end=%v\n", c.GetText(), c.GetSentenceEnd())
	}
	// Output:
	// "The " sentence_end=false
	// "tide " sentence_end=false
	// "turns " sentence_end=false
	// "at " sentence_end=false
	// "dusk." sentence_end=true
	// " Be " sentence_end=false
	// "at " sentence_end=false
	// "the " sentence_end=false
	// "pier." sentence_end=true
	// finish: FINISH_REASON_SCRIPTED fallback: false
}

// The ready-made server: auth, limits, keepalive enforcement, health,
// optional reflection (ServerOptions.Reflection), and a graceful shutdown
// bounded by a deadline.
func ExampleNewServer() {
	svc, closeRouter := exampleService()
	defer closeRouter()
	auth, err := identity.NewTokenAuthenticator(map[identity.Token]identity.Identity{
		"game-server-secret-token": {Kind: identity.KindService, ID: "zone-server-1"},
	})
	if err != nil {
		panic(err)
	}
	// In production pass Credentials: credentials.NewTLS(tlsConfig).
	srv, err := dialogue.NewServer(svc, dialogue.ServerOptions{Authenticator: auth, Insecure: true})
	if err != nil {
		panic(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer game-server-secret-token")
	// A trusted service speaks for a player it names.
	r, err := dialoguev1.NewDialogueServiceClient(conn).Say(ctx, &dialoguev1.SayRequest{Utterance: &dialoguev1.Utterance{
		NpcId: "mara", PlayerId: "player-7", Responsibility: "greeting"}})
	if err != nil {
		panic(err)
	}
	fmt.Println(r.GetText())

	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println("shutdown:", srv.Shutdown(sctx), "serve:", <-served)
	// Output:
	// The tide turns at dusk. Be at the pier.
	// shutdown: <nil> serve: <nil>
}

// Calling the service directly, without a transport: the identity goes on
// the context.
func ExampleService_Say() {
	svc, closeRouter := exampleService()
	defer closeRouter()
	ctx := identity.NewContext(context.Background(), identity.Identity{Kind: identity.KindPlayer, ID: "player-7"})
	r, err := svc.Say(ctx, &dialoguev1.Utterance{NpcId: "mara", Text: "Any work?",
		Context: &dialoguev1.GameContext{Location: "Greywater docks", TimeOfDay: "dusk"}})
	if err != nil {
		panic(err)
	}
	fmt.Println(r.GetText())
	fmt.Println(r.GetCompletion().GetTier(), r.GetCompletion().GetFinishReason())
	// Output:
	// The tide turns at dusk. Be at the pier.
	// scripted FINISH_REASON_SCRIPTED
}

// The HTTP/JSON fallback: POST the protojson request; StreamSay answers with
// Server-Sent Events.
func ExampleService_HTTPHandler() {
	svc, closeRouter := exampleService()
	defer closeRouter()
	auth, err := identity.NewTokenAuthenticator(map[identity.Token]identity.Identity{
		"player-7-secret-token": {Kind: identity.KindPlayer, ID: "player-7"},
	})
	if err != nil {
		panic(err)
	}
	h, err := svc.HTTPHandler(dialogue.HandlerOptions{Authenticator: auth})
	if err != nil {
		panic(err)
	}
	hs := httptest.NewServer(h)
	defer hs.Close()

	req, _ := http.NewRequest(http.MethodPost, hs.URL+dialogue.PathSay,
		strings.NewReader(`{"utterance": {"npcId": "mara", "text": "Any work?"}}`))
	req.Header.Set("Authorization", "Bearer player-7-secret-token")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, strings.Contains(string(body), `"text":"The tide turns at dusk. Be at the pier."`))
	// Output:
	// 200 true
}

// A conversation on one Converse stream: player turns go in, the NPC's
// chunks come out marked with their turn. A refused turn gets a TurnError
// and the conversation goes on with the same NPC and session.
func ExampleServer_converse() {
	svc, closeRouter := exampleService()
	defer closeRouter()
	auth, err := identity.NewTokenAuthenticator(map[identity.Token]identity.Identity{
		"player-7-secret-token": {Kind: identity.KindPlayer, ID: "player-7"},
	})
	if err != nil {
		panic(err)
	}
	srv, err := dialogue.NewServer(svc, dialogue.ServerOptions{Authenticator: auth, Insecure: true})
	if err != nil {
		panic(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() { _ = srv.Close(); <-served }()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer player-7-secret-token")
	st, err := dialoguev1.NewDialogueServiceClient(conn).Converse(ctx)
	if err != nil {
		panic(err)
	}
	turns := []*dialoguev1.Utterance{
		{NpcId: "mara", Text: "When does the boat leave?"},
		{Text: strings.Repeat("Please! ", 300)}, // over the utterance limit
		{Text: "And where?"},                    // same NPC and session as the first turn
	}
	for _, u := range turns {
		if err := st.Send(&dialoguev1.ConverseRequest{Action: &dialoguev1.ConverseRequest_Say{Say: u}}); err != nil {
			panic(err)
		}
		for {
			m, err := st.Recv()
			if err != nil {
				panic(err)
			}
			if e := m.GetError(); e != nil {
				fmt.Printf("turn %d refused: %v\n", m.GetTurn(), codes.Code(e.GetCode()))
				break
			}
			if c := m.GetChunk(); c.GetFinal() {
				fmt.Printf("turn %d done: %v\n", m.GetTurn(), c.GetCompletion().GetFinishReason())
				break
			} else if c.GetSentenceEnd() {
				fmt.Printf("turn %d sentence ends: %q\n", m.GetTurn(), c.GetText())
			}
		}
	}
	_ = st.CloseSend()
	_, err = st.Recv()
	fmt.Println("stream end:", err)
	// Output:
	// turn 1 sentence ends: "dusk."
	// turn 1 sentence ends: "pier."
	// turn 1 done: FINISH_REASON_SCRIPTED
	// turn 2 refused: InvalidArgument
	// turn 3 sentence ends: "dusk."
	// turn 3 sentence ends: "pier."
	// turn 3 done: FINISH_REASON_SCRIPTED
	// stream end: EOF
}
