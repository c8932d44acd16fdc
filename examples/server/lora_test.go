package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeVLLM answers vLLM's runtime LoRA endpoints and /v1/models, and
// records the load and unload calls.
type fakeVLLM struct {
	mu    sync.Mutex
	calls []string // "load npc-elite", "unload npc-elite"
}

func (f *fakeVLLM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Name string `json:"lora_name"`
	}
	switch r.URL.Path {
	case "/v1/models":
		io.WriteString(w, `{"object":"list","data":[]}`)
	case "/v1/load_lora_adapter", "/v1/unload_lora_adapter":
		json.NewDecoder(r.Body).Decode(&body)
		op := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/"), "_lora_adapter")
		f.mu.Lock()
		f.calls = append(f.calls, op+" "+body.Name)
		f.mu.Unlock()
		io.WriteString(w, "Success")
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeVLLM) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// TestLoRAAdmin: a tier marked lora = true gets its adapters managed, and
// the admin routes list, load, unload and register them on the engine.
func TestLoRAAdmin(t *testing.T) {
	vllm := &fakeVLLM{}
	engine := httptest.NewServer(vllm)
	defer engine.Close()
	cat := strings.Replace(string(defaultCatalog), `adapter = "npc-elite"`,
		`adapter = "npc-elite"`+"\nlora = true\nurls = [\""+engine.URL+"/v1\"]", 1)
	cat += "\n[lora]\nmax_loaded = 2\n[[lora.adapters]]\nname = \"npc-elite\"\npath = \"/adapters/npc-elite\"\n"
	path := filepath.Join(t.TempDir(), "server.toml")
	if err := os.WriteFile(path, []byte(cat), 0o600); err != nil {
		t.Fatal(err)
	}
	const admin = "lora-admin-token-00000"
	httpAddr, _, _ := startInProcess(t, "BB_CONFIG", path, "BB_ADMIN_TOKEN", admin)

	type status struct {
		Name     string
		LoadedOn []string `json:"loaded_on"`
	}
	post := func(op string, body any, wantCode int) []status {
		t.Helper()
		var out []status
		if resp := do(t, "POST", httpAddr+pathAdminLoRA+"/"+op, admin, body, &out); resp.StatusCode != wantCode {
			t.Fatalf("%s = %s, want %d", op, resp.Status, wantCode)
		}
		return out
	}
	var list []status
	do(t, "GET", httpAddr+pathAdminLoRA, admin, nil, &list)
	if diff := cmp.Diff([]status{{Name: "npc-elite"}}, list); diff != "" {
		t.Errorf("at start (-want +got):\n%s", diff)
	}
	list = post("load", map[string]string{"replica": "tier2-0", "adapter": "npc-elite"}, 200)
	if diff := cmp.Diff([]status{{Name: "npc-elite", LoadedOn: []string{"tier2-0"}}}, list); diff != "" {
		t.Errorf("after load (-want +got):\n%s", diff)
	}
	post("unload", map[string]string{"replica": "tier2-0", "adapter": "npc-elite"}, 200)
	post("register", map[string]string{"name": "blacksmith", "path": "/adapters/blacksmith"}, 200)
	post("register", map[string]string{"name": "blacksmith", "path": "/adapters/blacksmith"}, 409)
	post("register", map[string]string{"name": "nopath"}, 400)
	post("load", map[string]string{"replica": "tier2-0", "adapter": "ghost"}, 404)
	post("load", map[string]string{"replica": "tier9-0", "adapter": "blacksmith"}, 404)
	post("explode", map[string]string{}, 404)
	if diff := cmp.Diff([]string{"load npc-elite", "unload npc-elite"}, vllm.Calls()); diff != "" {
		t.Errorf("engine calls (-want +got):\n%s", diff)
	}
}

// TestLoRANeedsAModelServer: lora = true on a tier served by a stand-in
// is a configuration error naming the field.
func TestLoRANeedsAModelServer(t *testing.T) {
	cat := strings.Replace(string(defaultCatalog), `adapter = "npc-elite"`, `adapter = "npc-elite"`+"\nlora = true", 1)
	path := filepath.Join(t.TempDir(), "server.toml")
	if err := os.WriteFile(path, []byte(cat), 0o600); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), []string{"-http-addr", "127.0.0.1:0", "-grpc-addr", "127.0.0.1:0"},
		envOf("BB_CONFIG", path), io.Discard)
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "tiers[1].lora" {
		t.Errorf("err = %v, want a *ConfigError for tiers[1].lora", err)
	}
}
