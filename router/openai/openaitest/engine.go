package openaitest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// LoRA sets how the server's runtime adapter endpoints behave: POST
// /v1/load_lora_adapter and POST /v1/unload_lora_adapter, with vLLM's
// bodies ({"lora_name": …, "lora_path": …}) and answers (200 with a
// "Success: …" text; 400 "has already been loaded" for a loaded name; 404
// "cannot be found" for an unknown one). vLLM serves them when started
// with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True. The zero value loads any
// number of adapters at once.
type LoRA struct {
	// MaxLoaded, when positive, refuses (HTTP 400) a load that would hold
	// more adapters than this, so that tests catch a client that overfills
	// an engine (vLLM's --max-cpu-loras).
	MaxLoaded int
	// LoadDelay is waited before a load or unload answers.
	LoadDelay time.Duration
	// Status, when neither 0 nor 200, answers loads and unloads with that
	// status and an OpenAI error body.
	Status int
}

// Metrics sets the engine gauges the server's GET /metrics page shows
// beside the counts it keeps itself. The page has vLLM's metric names and
// Prometheus text format: vllm:num_requests_running (handlers in flight),
// vllm:num_requests_waiting, vllm:kv_cache_usage_perc,
// vllm:num_preemptions_total, vllm:request_success_total (responses
// written to the end) and vllm:lora_requests_info (the loaded adapters).
type Metrics struct {
	// ModelName is the model_name label; "" means "stand-in".
	ModelName    string
	Waiting      int
	KVCacheUsage float64 // 0..1
	Preemptions  int64
}

// SetLoRA sets the adapter endpoints' behaviour for later calls.
func (s *Server) SetLoRA(l LoRA) {
	s.mu.Lock()
	s.lora = l
	s.mu.Unlock()
}

// SetMetrics sets the gauges of the /metrics page.
func (s *Server) SetMetrics(m Metrics) {
	s.mu.Lock()
	s.metrics = m
	s.mu.Unlock()
}

// Adapters returns the names of the adapters loaded now, sorted.
func (s *Server) Adapters() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sortedAdapters()
}

func (s *Server) sortedAdapters() []string {
	out := make([]string, 0, len(s.adapters))
	for name := range s.adapters {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

type loraRequest struct {
	Name string `json:"lora_name"`
	Path string `json:"lora_path"`
}

// maxLoRABody bounds an adapter request's body.
const maxLoRABody = 64 << 10

func (s *Server) serveLoRA(w http.ResponseWriter, r *http.Request) {
	load := r.URL.Path == "/v1/load_lora_adapter"
	var req loraRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLoRABody))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil || req.Name == "" || (load && req.Path == "") {
		writeError(w, http.StatusBadRequest, "lora_name (and, to load, lora_path) required", 0)
		return
	}
	s.mu.Lock()
	l := s.lora
	s.mu.Unlock()
	if !s.sleep(r.Context(), l.LoadDelay) {
		return
	}
	if l.Status != 0 && l.Status != http.StatusOK {
		writeError(w, l.Status, http.StatusText(l.Status), 0)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, loaded := s.adapters[req.Name]
	switch {
	case load && loaded:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("The lora adapter '%s' has already been loaded.", req.Name), 0)
	case load && l.MaxLoaded > 0 && len(s.adapters) >= l.MaxLoaded:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("cannot load '%s': %d adapters loaded, the maximum", req.Name, len(s.adapters)), 0)
	case load:
		s.adapters[req.Name] = req.Path
		s.loraLoads.Add(1)
		s.maxAdapters = max(s.maxAdapters, int64(len(s.adapters)))
		fmt.Fprintf(w, "Success: LoRA adapter '%s' added successfully.", req.Name)
	case !loaded:
		writeError(w, http.StatusNotFound, fmt.Sprintf("The lora adapter '%s' cannot be found.", req.Name), 0)
	default:
		delete(s.adapters, req.Name)
		s.loraUnloads.Add(1)
		fmt.Fprintf(w, "Success: LoRA adapter '%s' removed successfully.", req.Name)
	}
}

func (s *Server) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	m, l, adapters := s.metrics, s.lora, s.sortedAdapters()
	s.mu.Unlock()
	model := m.ModelName
	if model == "" {
		model = "stand-in"
	}
	lbl := `{engine="0",model_name="` + model + `"}`
	var b strings.Builder
	metric := func(name, typ, help, labels, value string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s%s %s\n", name, help, name, typ, name, labels, value)
	}
	metric("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.", lbl, strconv.FormatInt(s.inflight.Load(), 10))
	metric("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", lbl, strconv.Itoa(m.Waiting))
	metric("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.", lbl, strconv.FormatFloat(m.KVCacheUsage, 'g', -1, 64))
	metric("vllm:num_preemptions_total", "counter", "Cumulative number of preemption from the engine.", lbl, strconv.FormatInt(m.Preemptions, 10))
	metric("vllm:request_success_total", "counter", "Count of successfully processed requests.",
		`{engine="0",finished_reason="stop",model_name="`+model+`"}`, strconv.FormatInt(s.completed.Load(), 10))
	metric("vllm:lora_requests_info", "gauge", "Running stats on lora requests.",
		`{max_lora="`+strconv.Itoa(l.MaxLoaded)+`",running_lora_adapters="`+strings.Join(adapters, ",")+`",waiting_lora_adapters=""}`,
		strconv.FormatInt(time.Now().Unix(), 10))
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = io.WriteString(w, b.String())
}
