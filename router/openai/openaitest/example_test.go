package openaitest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"strings"

	"github.com/bodybroker/sdk/router"
	"github.com/bodybroker/sdk/router/openai"
	"github.com/bodybroker/sdk/router/openai/openaitest"
)

// A stand-in model server in place of vLLM: it answers in character by
// reading the system message, and a router/openai Model streams from it.
func ExampleNewServer() {
	srv := openaitest.NewServer(openaitest.Behavior{})
	defer srv.Close()
	srv.SetHandler(func(req openaitest.Request) openaitest.Behavior {
		line := "Move along."
		if len(req.Messages) > 0 && strings.Contains(req.Messages[0].Content, "fence") {
			line = "Not here. Meet me at the pier."
		}
		return openaitest.Behavior{Tokens: strings.SplitAfter(line, " ")}
	})

	m, err := openai.New(openai.Options{BaseURL: srv.URL + "/v1", Model: "stand-in"})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	s, err := m.Stream(context.Background(), router.Request{Messages: []router.Message{
		{Role: router.RoleSystem, Content: "A dockside fence who trusts no one."},
		{Role: router.RoleUser, Content: "When does the boat leave?"},
	}})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	var pieces []string
	for {
		d, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			log.Fatal(err)
		}
		pieces = append(pieces, d.Text)
	}
	fmt.Printf("%q\n", pieces)
	fmt.Println("requests:", len(srv.Requests()), "model:", srv.Requests()[0].Model)
	// Output:
	// ["Not " "here. " "Meet " "me " "at " "the " "pier."]
	// requests: 1 model: stand-in
}
