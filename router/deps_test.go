package router_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies guards the design's dependency rules: the router core
// and the scripted backend link no network, RPC or Redis code; only
// router/openai uses net/http, and nothing here links grpc or go-redis.
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	tests := []struct {
		pkg       string
		forbidden []string
	}{
		{"github.com/bodybroker/sdk/router", []string{"net", "net/http", "google.golang.org/grpc", "github.com/redis/go-redis/v9"}},
		{"github.com/bodybroker/sdk/router/scripted", []string{"net", "net/http", "google.golang.org/grpc", "github.com/redis/go-redis/v9"}},
		{"github.com/bodybroker/sdk/router/openai", []string{"google.golang.org/grpc", "github.com/redis/go-redis/v9"}},
	}
	for _, tt := range tests {
		out, err := exec.Command(gobin, "list", "-deps", tt.pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", tt.pkg, err)
		}
		deps := map[string]bool{}
		for _, d := range strings.Fields(string(out)) {
			deps[d] = true
		}
		for _, f := range tt.forbidden {
			if deps[f] {
				t.Errorf("%s depends on %s", tt.pkg, f)
			}
		}
	}
}
