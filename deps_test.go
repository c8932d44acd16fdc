package sdk

import (
	"os/exec"
	"strings"
	"testing"
)

// The dependency guard, after Tailscale's deptest: it asks the go command for
// every package's transitive imports and fails when a package reaches one it
// must not (DESIGN.md, "Dependency directions"). Test-only imports do not
// count; what a user links does.

const mod = "github.com/bodybroker/sdk"

// rule forbids packages matching pkg (a package path, or a prefix ending in
// "/...") from depending on any import path with one of the deny prefixes,
// unless the package matches one of except. With imports set, the rule
// looks only at what the package's own files import (its tests included),
// not at everything it links.
type rule struct {
	pkg     string
	deny    []string
	except  []string
	imports bool
	why     string
}

var rules = []rule{
	{
		pkg:    mod + "/...",
		deny:   []string{"github.com/prometheus/client_golang", "github.com/chromedp", "github.com/BurntSushi/toml"},
		except: []string{mod + "/examples/..."},
		why:    "the example server's own dependencies (Prometheus exposition, its config file, browser tests) stay in examples: SDK packages export Stats() and hooks",
	},
	{
		pkg:  mod + "/...",
		deny: []string{"google.golang.org/grpc"},
		except: []string{
			mod + "/dialogue/...",
			mod + "/examples/...",
		},
		why: "only dialogue and examples import grpc",
	},
	{
		pkg:  mod + "/eventbus",
		deny: []string{"github.com/redis/go-redis", mod + "/eventbus/redisbus"},
		why:  "the in-memory bus must not link its Redis backend",
	},
	{
		pkg: mod + "/eventbus",
		deny: []string{
			mod + "/router", mod + "/dialogue", mod + "/payment", mod + "/worldtime",
			mod + "/audio", mod + "/settings", mod + "/indicators", mod + "/batching",
		},
		why: "game packages import eventbus, never the reverse",
	},
	{
		pkg:  mod + "/eventbus/eventbustest",
		deny: []string{"github.com/redis/go-redis", mod + "/eventbus/redisbus"},
		why:  "the conformance suite runs against any transport without linking one",
	},
	{
		pkg: mod + "/payment",
		deny: []string{
			"github.com/stripe/stripe-go", "github.com/redis/go-redis",
			mod + "/payment/stripepay", mod + "/payment/redisstore",
		},
		why: "payment types must not link stripe-go or go-redis; those are its backends",
	},
	{
		pkg: mod + "/router",
		deny: []string{
			"github.com/redis/go-redis", "github.com/stripe/stripe-go",
			mod + "/router/openai", mod + "/router/scripted", mod + "/dialogue",
		},
		why: "the router core owns the Model seam; backends live in subpackages",
	},
	{
		pkg:  mod + "/router",
		deny: []string{"net", "net/http"},
		why:  "only router/openai talks to the network",
	},
	{
		pkg:  mod + "/router/scripted",
		deny: []string{"net", "net/http", "github.com/redis/go-redis"},
		why:  "canned lines need no network",
	},
	{
		pkg:  mod + "/router/openai",
		deny: []string{"github.com/redis/go-redis", mod + "/router/openai/openaitest"},
		why:  "the OpenAI-compatible client needs net/http only",
	},
	{
		pkg:  mod + "/router/openai/openaitest",
		deny: []string{".", "testing"}, // ".": any non-standard import; see denied
		why:  "the stand-in model server runs in examples and demo servers: standard library only, no package testing",
	},
	{
		pkg: mod + "/router/gateway",
		deny: []string{
			"google.golang.org/grpc", "github.com/redis/go-redis", "github.com/openai/openai-go", "github.com/stripe/stripe-go",
			mod + "/router/openai", mod + "/router/scripted", mod + "/dialogue", mod + "/payment",
		},
		why: "the gateway serves any router: it links the router core and net/http, never a backend, grpc, Redis or openai-go",
	},
	{
		// Linking internal packages through public ones is fine; importing
		// one is what a copied example cannot do.
		pkg:     mod + "/examples/...",
		deny:    []string{mod + "/internal"},
		imports: true,
		why:     "examples are copied into studios' modules, which cannot import the SDK's internal packages",
	},
	{
		pkg:  mod + "/payment/paymenttest",
		deny: []string{"github.com/stripe/stripe-go", "github.com/redis/go-redis"},
		why:  "the provider and store suites must work without the backends",
	},
	{
		pkg: mod + "/payment/fakepay",
		deny: []string{
			"testing", "github.com/stripe/stripe-go", "github.com/redis/go-redis",
			mod + "/payment/stripepay", mod + "/payment/redisstore", mod + "/payment/paymenttest",
		},
		why: "the demo provider runs in examples and servers: no package testing, no stripe-go, no Redis",
	},
	{
		pkg:  mod + "/payment/stripepay",
		deny: []string{"github.com/redis/go-redis"},
		why:  "the Stripe provider does not need Redis",
	},
	{
		pkg:  mod + "/payment/redisstore",
		deny: []string{"github.com/stripe/stripe-go"},
		why:  "the Redis store does not need Stripe",
	},
	{
		pkg:    mod + "/...",
		deny:   []string{"testing"},
		except: []string{mod + "/.../*test"},
		why:    "only test-helper packages (…test) may link package testing",
	},
	{
		pkg: mod + "/dialogue",
		deny: []string{
			"github.com/stripe/stripe-go", mod + "/payment", "github.com/redis/go-redis",
			mod + "/router/openai", mod + "/router/scripted", mod + "/router/openai/openaitest",
		},
		why: "dialogue depends on the router core only; its Redis store and the router's backends are the user's choice",
	},
	{
		pkg: mod + "/dialogue/history",
		deny: []string{
			"google.golang.org/grpc", "google.golang.org/protobuf", "github.com/redis/go-redis",
			mod + "/router",
		},
		why: "conversation memory is a leaf that store backends build on: no grpc, protobuf, Redis or router (so not the dialogue service either)",
	},
	{
		pkg:  mod + "/dialogue/redisstore",
		deny: []string{"google.golang.org/grpc", "google.golang.org/protobuf"},
		why:  "a conversation store links go-redis and dialogue/history, not grpc or protobuf (so not the dialogue service)",
	},
	{
		pkg:  mod + "/dialogue/dialoguetest",
		deny: []string{"google.golang.org/grpc", "google.golang.org/protobuf", "github.com/redis/go-redis"},
		why:  "the store conformance suite runs against any store without linking grpc or a backend",
	},
	{
		pkg:  mod + "/dialogue/dialoguev1",
		deny: []string{mod, "github.com/redis/go-redis"},
		why:  "generated code depends on protobuf and grpc only",
	},
	{
		pkg:  mod + "/router/...",
		deny: []string{mod + "/dialogue"},
		why:  "dialogue builds on the router, never the reverse",
	},
	{
		pkg: mod + "/settings",
		deny: []string{
			"github.com/redis/go-redis", mod + "/settings/filestore", mod + "/settings/redisstore",
			mod + "/dialogue", mod + "/payment", mod + "/router",
		},
		why: "the settings core links no Redis; its stores are subpackages",
	},
	{
		pkg:  mod + "/settings/settingstest",
		deny: []string{"github.com/redis/go-redis", mod + "/settings/filestore", mod + "/settings/redisstore"},
		why:  "the store conformance suite runs against any store without linking one",
	},
	{
		pkg:  mod + "/settings/filestore",
		deny: []string{"github.com/redis/go-redis", mod + "/settings/redisstore"},
		why:  "the file store needs the file system, not Redis",
	},
	{
		pkg:  mod + "/...",
		deny: []string{mod + "/settings"},
		except: []string{
			mod + "/settings/...",
			mod + "/examples/...",
		},
		why: "audio, indicators and the rest learn settings from the settings.changed event or an interface of their own, never by importing settings",
	},
	{
		pkg:  mod + "/identity",
		deny: []string{"."}, // any non-standard import; see denied
		why:  "identity is shared by every server-facing package: standard library only (crypto, context)",
	},
	{
		pkg:  mod + "/latency",
		deny: []string{"."}, // any non-standard import; see denied
		why:  "the latency summary is a public leaf: standard library only",
	},
	{
		pkg:  mod + "/indicators",
		deny: []string{".", "net"}, // standard library only, and no network
		why:  "the indicator math is engine-neutral: game clients embed it, linking neither the bus, protobuf, Redis nor the network",
	},
	{
		pkg:  mod + "/worldtime",
		deny: []string{"github.com/redis/go-redis", mod + "/worldtime/redisstore", mod + "/dialogue", mod + "/payment", mod + "/router"},
		why:  "the clock core links neither its Redis store nor other game packages",
	},
	{
		pkg:  mod + "/worldtime/worldtimetest",
		deny: []string{"github.com/redis/go-redis", mod + "/worldtime/redisstore"},
		why:  "the store conformance suite runs against any store without linking one",
	},
	{
		pkg:  mod + "/batching/engine",
		deny: []string{".", "net"},
		why:  "the engine config generator is pure computation: standard library only, no network",
	},
	{
		pkg:  mod + "/dialogue",
		deny: []string{mod + "/worldtime"},
		why:  "dialogue takes the time of day through a func option, not by importing worldtime",
	},
	{
		pkg: mod + "/audio",
		deny: []string{
			"github.com/redis/go-redis", "net", "os/exec", mod + "/dialogue", mod + "/settings",
			mod + "/router", mod + "/payment", mod + "/indicators", mod + "/batching",
		},
		why: "the audio director is math and intents: it may import worldtime and eventbus, learns dialogue and settings through events, and leaves synthesis, HTTP and Redis to its subpackages",
	},
	{
		pkg:  mod + "/audio/espeak",
		deny: []string{"github.com/redis/go-redis", "net"},
		why:  "the local synthesizer runs a program; it needs no network",
	},
	{
		pkg:  mod + "/audio/openaitts",
		deny: []string{"github.com/redis/go-redis", "os/exec"},
		why:  "the speech client needs net/http only",
	},
	{
		pkg:  mod + "/audio/cliphttp",
		deny: []string{"github.com/redis/go-redis", "os/exec"},
		why:  "serving clips needs net/http and a ClipStore, not a backend",
	},
	{
		pkg:  mod + "/audio/audiotest",
		deny: []string{"github.com/redis/go-redis", mod + "/audio/redisclips"},
		why:  "the clip store suite runs against any store without linking one",
	},
	{
		pkg: mod + "/batching/sim",
		deny: []string{
			"github.com/prometheus", "github.com/NVIDIA/go-nvml", "google.golang.org/grpc",
			"github.com/redis/go-redis", "gonum.org/v1/plot", "net/http",
		},
		why: "the simulator is pure computation: no telemetry, network or plotting libraries",
	},
	{
		pkg:    mod + "/...",
		deny:   []string{"gonum.org/v1/plot"},
		except: []string{mod + "/examples/capacity"},
		why:    "the plotting library is the capacity planner's alone",
	},
	{
		pkg: mod + "/batching",
		deny: []string{
			"github.com/prometheus", "github.com/NVIDIA", "github.com/redis/go-redis", "net",
			mod + "/batching/vllmmetrics", mod + "/batching/metrics", mod + "/batching/nvml", mod + "/batching/sim",
		},
		why: "the limiter and batcher link no telemetry library, no network and no simulator; those are subpackages",
	},
	{
		pkg:    mod + "/batching/...",
		deny:   []string{"github.com/prometheus"},
		except: []string{mod + "/batching/vllmmetrics", mod + "/batching/metrics"},
		why:    "only the metrics-scraping subpackage links the Prometheus libraries",
	},
	{
		pkg:    mod + "/batching/...",
		deny:   []string{"github.com/NVIDIA"},
		except: []string{mod + "/batching/nvml"},
		why:    "only batching/nvml links go-nvml",
	},
	{
		pkg:  mod + "/router/...",
		deny: []string{mod + "/batching"},
		why:  "batching plugs into the router's Limiter seam; the router never imports it",
	},
}

func matches(pattern, path string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "/.../*test"); ok {
		return (path == prefix || strings.HasPrefix(path, prefix+"/")) && strings.HasSuffix(path, "test")
	}
	if prefix, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == prefix || strings.HasPrefix(path, prefix+"/")
	}
	return path == pattern
}

func denied(deny, dep string) bool {
	if deny == "." {
		first, _, _ := strings.Cut(dep, "/")
		return strings.Contains(first, ".")
	}
	return dep == deny || strings.HasPrefix(dep, deny+"/")
}

func TestDependencyDirections(t *testing.T) {
	out, err := exec.Command("go", "list",
		"-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}} |{{range .Deps}} {{.}}{{end}}`,
		"./...").Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	checked := map[string]bool{}
	for line := range strings.Lines(string(out)) {
		direct, linked, _ := strings.Cut(line, " |")
		fields := strings.Fields(direct)
		if len(fields) == 0 {
			continue
		}
		pkg, imports, deps := fields[0], fields[1:], strings.Fields(linked)
	rules:
		for _, r := range rules {
			if !matches(r.pkg, pkg) {
				continue
			}
			for _, e := range r.except {
				if matches(e, pkg) {
					continue rules
				}
			}
			checked[pkg] = true
			deps, verb := deps, "depends on"
			if r.imports {
				deps, verb = imports, "imports"
			}
			for _, dep := range deps {
				for _, d := range r.deny {
					if denied(d, dep) {
						t.Errorf("%s %s %s: %s", pkg, verb, dep, r.why)
					}
				}
			}
		}
	}
	if !checked[mod+"/latency"] {
		t.Errorf("latency was not checked; is go list output parsed right?\n%s", out)
	}
	for _, p := range []string{mod + "/router/openai/openaitest", mod + "/examples/quickstart", mod + "/payment/fakepay", mod + "/identity",
		mod + "/dialogue/history", mod + "/dialogue/redisstore", mod + "/dialogue/dialoguetest"} {
		if !checked[p] {
			t.Errorf("%s was not checked", p)
		}
	}
	t.Logf("checked %d packages", len(checked))
}

func TestDenyMatching(t *testing.T) {
	tests := []struct {
		deny, dep string
		want      bool
	}{
		{"github.com/redis/go-redis", "github.com/redis/go-redis/v9", true},
		{"github.com/redis/go-redis", "github.com/redis/go-redisx", false},
		{".", "fmt", false},
		{".", "golang.org/x/sync/errgroup", true},
		{".", "internal/race", false},
	}
	for _, tt := range tests {
		if got := denied(tt.deny, tt.dep); got != tt.want {
			t.Errorf("denied(%q, %q) = %v, want %v", tt.deny, tt.dep, got, tt.want)
		}
	}
	if !matches(mod+"/...", mod+"/eventbus/redisbus") || matches(mod+"/eventbus", mod+"/eventbus/redisbus") ||
		!matches(mod+"/.../*test", mod+"/payment/paymenttest") || matches(mod+"/.../*test", mod+"/payment") {
		t.Error("matches() gets package patterns wrong")
	}
}
