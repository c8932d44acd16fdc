package openaitest_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/bodybroker/sdk/router/openai/openaitest"
)

func postPath(t *testing.T, srv *openaitest.Server, path, body string) (int, string) {
	t.Helper()
	resp, err := srv.Client().Post(srv.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestLoRAEndpoints(t *testing.T) {
	srv := openaitest.NewServer(openaitest.Behavior{})
	defer srv.Close()
	srv.SetLoRA(openaitest.LoRA{MaxLoaded: 2})
	load := func(name string) (int, string) {
		return postPath(t, srv, "/v1/load_lora_adapter", `{"lora_name":"`+name+`","lora_path":"/adapters/`+name+`"}`)
	}
	unload := func(name string) (int, string) {
		return postPath(t, srv, "/v1/unload_lora_adapter", `{"lora_name":"`+name+`"}`)
	}
	steps := []struct {
		name     string
		do       func() (int, string)
		status   int
		contains string
	}{
		{"load a", func() (int, string) { return load("a") }, 200, "Success: LoRA adapter 'a' added"},
		{"load a again", func() (int, string) { return load("a") }, 400, "has already been loaded"},
		{"load b", func() (int, string) { return load("b") }, 200, "Success"},
		{"load c over max", func() (int, string) { return load("c") }, 400, "maximum"},
		{"unload a", func() (int, string) { return unload("a") }, 200, "removed successfully"},
		{"unload a again", func() (int, string) { return unload("a") }, 404, "cannot be found"},
		{"load without path", func() (int, string) {
			return postPath(t, srv, "/v1/load_lora_adapter", `{"lora_name":"x"}`)
		}, 400, "lora_path"},
		{"load c", func() (int, string) { return load("c") }, 200, "Success"},
	}
	for _, st := range steps {
		status, body := st.do()
		if status != st.status || !strings.Contains(body, st.contains) {
			t.Errorf("%s: %d %q, want %d containing %q", st.name, status, body, st.status, st.contains)
		}
	}
	if got, want := srv.Adapters(), []string{"b", "c"}; !slices.Equal(got, want) {
		t.Errorf("Adapters() = %q, want %q", got, want)
	}
	if st := srv.Stats(); st.LoRALoads != 3 || st.LoRAUnloads != 1 || st.MaxAdapters != 2 || st.Requests != 0 {
		t.Errorf("stats %+v, want 3 loads, 1 unload, at most 2 loaded, no completions counted", st)
	}
	srv.SetLoRA(openaitest.LoRA{Status: http.StatusServiceUnavailable})
	if status, _ := load("d"); status != 503 {
		t.Errorf("injected status: got %d, want 503", status)
	}
}

func TestMetricsPage(t *testing.T) {
	srv := openaitest.NewServer(openaitest.Behavior{})
	defer srv.Close()
	srv.SetMetrics(openaitest.Metrics{ModelName: "llama", Waiting: 3, KVCacheUsage: 0.25, Preemptions: 7})
	post(t, srv, `{"model":"llama","messages":[{"role":"user","content":"hi"}]}`)
	postPath(t, srv, "/v1/load_lora_adapter", `{"lora_name":"smith","lora_path":"/p"}`)
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	page := string(b)
	for _, want := range []string{
		"# TYPE vllm:num_requests_waiting gauge\n",
		`vllm:num_requests_running{engine="0",model_name="llama"} 0` + "\n",
		`vllm:num_requests_waiting{engine="0",model_name="llama"} 3` + "\n",
		`vllm:kv_cache_usage_perc{engine="0",model_name="llama"} 0.25` + "\n",
		`vllm:num_preemptions_total{engine="0",model_name="llama"} 7` + "\n",
		`vllm:request_success_total{engine="0",finished_reason="stop",model_name="llama"} 1` + "\n",
		`running_lora_adapters="smith"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q:\n%s", want, page)
		}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q, want Prometheus text format", ct)
	}
}
