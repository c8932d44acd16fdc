package lora

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/bodybroker/sdk/latency"
)

// Defaults.
const (
	// DefaultMaxLoaded is the original system's MAX_LORA_ADAPTERS.
	DefaultMaxLoaded = 20
	// DefaultTimeout bounds one load or unload call.
	DefaultTimeout = 30 * time.Second
	// MaxErrorBody is how much of an engine's error answer is read and
	// kept in an [*EngineError].
	MaxErrorBody = 4 << 10
)

// Errors.
var (
	ErrClosed         = errors.New("lora: manager closed")
	ErrUnknownAdapter = errors.New("lora: adapter not registered")
	ErrUnknownReplica = errors.New("lora: unknown replica")
	ErrDuplicate      = errors.New("lora: adapter already registered")
	// ErrFull: the replica holds MaxLoaded adapters and every one is in
	// use, so none can be evicted.
	ErrFull = errors.New("lora: replica full, every loaded adapter in use")
	// ErrInUse: Unload or Unregister of an adapter that is acquired.
	ErrInUse = errors.New("lora: adapter in use")
	// ErrEngine: the engine refused a load or unload; the error is an
	// *EngineError.
	ErrEngine = errors.New("lora: engine refused")
)

// OptionsError names a bad Options field.
type OptionsError struct{ Field, Reason string }

func (e *OptionsError) Error() string { return "lora: Options." + e.Field + ": " + e.Reason }

// EngineError is an engine's refusal of a load or unload.
type EngineError struct {
	Replica, Adapter, Op string // Op is "load" or "unload"
	Status               int
	Body                 string // at most MaxErrorBody bytes
}

func (e *EngineError) Error() string {
	return fmt.Sprintf("lora: %s %q on %s: HTTP %d: %s", e.Op, e.Adapter, e.Replica, e.Status, e.Body)
}

// Unwrap returns ErrEngine.
func (e *EngineError) Unwrap() error { return ErrEngine }

// Replica is one vLLM server.
type Replica struct {
	// Name identifies it; use the router's replica name so that
	// [Manager.Holds] answers for the router's replicas.
	Name string
	// BaseURL is the OpenAI-compatible base, as router/openai takes it
	// ("http://host:8000/v1"); the adapter endpoints are under it.
	BaseURL string
}

// Adapter is a registered LoRA adapter. Requests address it by Name as
// their model.
type Adapter struct {
	Name      string
	Path      string // lora_path: where the engine reads it
	BaseModel string // informational
	Rank      int    // informational; see batching/engine for --max-lora-rank
}

// Options configure a [Manager]. The zero value of each field means its
// default.
type Options struct {
	Replicas []Replica
	// MaxLoaded is how many adapters one replica holds at once; loading
	// one more evicts the least recently used. Set it to the engine's
	// --max-cpu-loras (or --max-loras when that is unset). Default
	// DefaultMaxLoaded.
	MaxLoaded int
	// HTTPClient sends the calls; nil means http.DefaultClient.
	HTTPClient *http.Client
	// APIKey, when set, is sent as "Authorization: Bearer …".
	APIKey string
	// Timeout bounds each load and unload call, including one the caller
	// abandoned. Default DefaultTimeout.
	Timeout time.Duration
	// Now reads the clock for least-recently-used order; nil means
	// time.Now.
	Now func() time.Time
}

// Status is what the manager knows of one adapter.
type Status struct {
	Adapter Adapter
	// LoadedOn lists the replicas holding it, sorted.
	LoadedOn []string
	// InUse counts acquisitions not yet released, over all replicas.
	InUse int
	// LastUsed is the latest load or acquisition on any replica (zero if
	// never).
	LastUsed time.Time
}

// ReplicaStats is one replica's adapters.
type ReplicaStats struct {
	Name   string
	Loaded []string // loaded now, sorted
	Busy   int      // loads and unloads in progress
}

// Stats is a snapshot of the manager's counters.
type Stats struct {
	Loads, Unloads, Evictions uint64 // successful engine calls (Evictions are among Unloads)
	Failures                  uint64 // engine calls that failed
	// Shared counts callers that joined another caller's load of the same
	// adapter on the same replica instead of making their own call.
	Shared   uint64
	LoadTime latency.Summary
	Replicas []ReplicaStats
}

type state int

const (
	loading state = iota
	loaded
	evicting
)

type entry struct {
	state    state
	lastUsed time.Time
	pins     int
	done     chan struct{} // closed when loading or evicting ends
}

type replica struct {
	Replica
	entries map[string]*entry
}

// Manager tracks and changes the adapters loaded on a set of replicas.
// It is safe for concurrent use; the caller must call [Manager.Close].
type Manager struct {
	o      Options
	client *http.Client
	now    func() time.Time
	sf     singleflight.Group
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // engine calls in progress

	mu       sync.Mutex
	closed   bool
	adapters map[string]Adapter
	replicas map[string]*replica

	loads, unloads, evictions, failures, shared atomic.Uint64
	loadTime                                    latency.Histogram
}

// New validates o and returns a Manager. It makes no calls: it assumes no
// adapter is loaded until one is loaded through it (a load of an adapter
// the engine already holds counts as a success).
func New(o Options) (*Manager, error) {
	switch {
	case o.MaxLoaded < 0:
		return nil, &OptionsError{"MaxLoaded", "negative"}
	case o.Timeout < 0:
		return nil, &OptionsError{"Timeout", "negative"}
	}
	if o.MaxLoaded == 0 {
		o.MaxLoaded = DefaultMaxLoaded
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	m := &Manager{o: o, client: o.HTTPClient, now: o.Now, adapters: map[string]Adapter{}, replicas: map[string]*replica{}}
	if m.client == nil {
		m.client = http.DefaultClient
	}
	if m.now == nil {
		m.now = time.Now
	}
	for i, r := range o.Replicas {
		switch {
		case r.Name == "":
			return nil, &OptionsError{fmt.Sprintf("Replicas[%d].Name", i), "empty"}
		case m.replicas[r.Name] != nil:
			return nil, &OptionsError{fmt.Sprintf("Replicas[%d].Name", i), fmt.Sprintf("duplicate %q", r.Name)}
		case !strings.HasPrefix(r.BaseURL, "http://") && !strings.HasPrefix(r.BaseURL, "https://"):
			return nil, &OptionsError{fmt.Sprintf("Replicas[%d].BaseURL", i), fmt.Sprintf("%q is not an http(s) URL", r.BaseURL)}
		}
		r.BaseURL = strings.TrimSuffix(r.BaseURL, "/")
		m.replicas[r.Name] = &replica{Replica: r, entries: map[string]*entry{}}
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

// Register records an adapter without loading it.
func (m *Manager) Register(a Adapter) error {
	if a.Name == "" || a.Path == "" {
		return fmt.Errorf("lora: adapter needs a Name and a Path: %w", ErrUnknownAdapter)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if _, ok := m.adapters[a.Name]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicate, a.Name)
	}
	m.adapters[a.Name] = a
	return nil
}

// Unregister unloads an adapter from every replica and forgets it. It
// fails with ErrInUse while the adapter is acquired anywhere.
func (m *Manager) Unregister(ctx context.Context, name string) error {
	m.mu.Lock()
	if _, ok := m.adapters[name]; !ok {
		m.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrUnknownAdapter, name)
	}
	var on []string
	for _, r := range m.replicas {
		if e := r.entries[name]; e != nil {
			if e.pins > 0 {
				m.mu.Unlock()
				return fmt.Errorf("%w: %q on %s", ErrInUse, name, r.Name)
			}
			on = append(on, r.Name)
		}
	}
	m.mu.Unlock()
	for _, r := range on {
		if err := m.Unload(ctx, r, name); err != nil {
			return err
		}
	}
	m.mu.Lock()
	delete(m.adapters, name)
	m.mu.Unlock()
	return nil
}

// Holds reports whether replica has adapter loaded now (and not being
// evicted). It takes no lock longer than a map lookup, so a router may
// call it for each candidate replica to prefer the ones that need no
// load.
func (m *Manager) Holds(replica, adapter string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.replicas[replica]
	if r == nil {
		return false
	}
	e := r.entries[adapter]
	return e != nil && e.state == loaded
}

// Load makes sure adapter is loaded on replica, loading it (and evicting
// the least recently used unpinned adapter when the replica is full) if
// not. Concurrent Loads of one adapter on one replica make one call.
func (m *Manager) Load(ctx context.Context, replica, adapter string) error {
	return m.ensure(ctx, replica, adapter, false)
}

// Acquire is Load, and also pins the adapter on the replica until the
// returned release is called (release is idempotent), so that it is not
// evicted under a running request.
func (m *Manager) Acquire(ctx context.Context, replica, adapter string) (release func(), err error) {
	if err := m.ensure(ctx, replica, adapter, true); err != nil {
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			if e := m.replicas[replica].entries[adapter]; e != nil && e.pins > 0 {
				e.pins--
				e.lastUsed = m.now()
			}
			m.mu.Unlock()
		})
	}, nil
}

func (m *Manager) ensure(ctx context.Context, replica, adapter string, pin bool) error {
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return ErrClosed
		}
		r := m.replicas[replica]
		if r == nil {
			m.mu.Unlock()
			return fmt.Errorf("%w: %q", ErrUnknownReplica, replica)
		}
		if _, ok := m.adapters[adapter]; !ok {
			m.mu.Unlock()
			return fmt.Errorf("%w: %q", ErrUnknownAdapter, adapter)
		}
		if e := r.entries[adapter]; e != nil && e.state == loaded {
			e.lastUsed = m.now()
			if pin {
				e.pins++
			}
			m.mu.Unlock()
			return nil
		}
		m.mu.Unlock()

		ch := m.sf.DoChan(replica+"\x00"+adapter, func() (any, error) { return nil, m.load(replica, adapter) })
		select {
		case res := <-ch:
			if res.Shared {
				m.shared.Add(1)
			}
			if res.Err != nil {
				return res.Err
			}
			// Loaded; loop to take it (and pin it) under the lock. An
			// eviction may win the race, then we load again.
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// begin registers an engine call with Close; it fails once closed.
func (m *Manager) begin() error {
	if m.closed {
		return ErrClosed
	}
	m.wg.Add(1)
	return nil
}

// load runs once per (replica, adapter) at a time, under singleflight.
func (m *Manager) load(replica, adapter string) error {
	for {
		m.mu.Lock()
		if err := m.begin(); err != nil {
			m.mu.Unlock()
			return err
		}
		r := m.replicas[replica]
		a, ok := m.adapters[adapter]
		if !ok {
			m.wg.Done()
			m.mu.Unlock()
			return fmt.Errorf("%w: %q", ErrUnknownAdapter, adapter)
		}
		if e := r.entries[adapter]; e != nil {
			if e.state == loaded {
				m.wg.Done()
				m.mu.Unlock()
				return nil
			}
			// Being evicted: wait for the unload to finish, then load.
			done := e.done
			m.wg.Done()
			m.mu.Unlock()
			select {
			case <-done:
				continue
			case <-m.ctx.Done():
				return ErrClosed
			}
		}
		var victim string
		if r.used() >= m.o.MaxLoaded {
			victim = r.lru()
			if victim == "" {
				busy := r.busy()
				m.wg.Done()
				m.mu.Unlock()
				if busy == nil {
					return fmt.Errorf("%w: %s holds %d", ErrFull, replica, m.o.MaxLoaded)
				}
				// Every slot is loading or pinned: wait for a load to
				// end, then look again.
				select {
				case <-busy:
					continue
				case <-m.ctx.Done():
					return ErrClosed
				}
			}
			v := r.entries[victim]
			v.state, v.done = evicting, make(chan struct{})
		}
		e := &entry{state: loading, done: make(chan struct{})}
		r.entries[adapter] = e
		m.mu.Unlock()

		err := m.evictThenLoad(r, victim, a)
		m.mu.Lock()
		if err != nil {
			delete(r.entries, adapter)
		} else {
			e.state, e.lastUsed = loaded, m.now()
		}
		close(e.done)
		m.wg.Done()
		m.mu.Unlock()
		return err
	}
}

// evictThenLoad unloads victim (if any) and, once it is gone, loads a.
func (m *Manager) evictThenLoad(r *replica, victim string, a Adapter) error {
	if victim != "" {
		err := m.call(r, "unload", victim, "")
		m.mu.Lock()
		v := r.entries[victim]
		if err != nil {
			v.state = loaded
		} else {
			delete(r.entries, victim)
			m.evictions.Add(1)
		}
		close(v.done)
		m.mu.Unlock()
		if err != nil {
			return err
		}
	}
	start := m.now()
	if err := m.call(r, "load", a.Name, a.Path); err != nil {
		return err
	}
	m.loadTime.Record(m.now().Sub(start))
	return nil
}

// used counts the slots taken: loaded adapters and loads in progress,
// not adapters being evicted (each eviction's slot belongs to the load
// that waits for it).
func (r *replica) used() int {
	n := 0
	for _, e := range r.entries {
		if e.state != evicting {
			n++
		}
	}
	return n
}

// lru returns the least recently used loaded, unpinned adapter, or "".
func (r *replica) lru() string {
	var name string
	var oldest time.Time
	for n, e := range r.entries {
		if e.state != loaded || e.pins > 0 {
			continue
		}
		if name == "" || e.lastUsed.Before(oldest) || (e.lastUsed.Equal(oldest) && n < name) {
			name, oldest = n, e.lastUsed
		}
	}
	return name
}

// busy returns the done channel of a load in progress, or nil.
func (r *replica) busy() chan struct{} {
	for _, e := range r.entries {
		if e.state == loading {
			return e.done
		}
	}
	return nil
}

// Unload unloads adapter from replica. Unloading one that is not loaded
// is not an error; one that is acquired is (ErrInUse).
func (m *Manager) Unload(ctx context.Context, replica, adapter string) error {
	for {
		m.mu.Lock()
		r := m.replicas[replica]
		switch {
		case m.closed:
			m.mu.Unlock()
			return ErrClosed
		case r == nil:
			m.mu.Unlock()
			return fmt.Errorf("%w: %q", ErrUnknownReplica, replica)
		}
		e := r.entries[adapter]
		if e == nil {
			m.mu.Unlock()
			return nil
		}
		if e.state != loaded {
			done := e.done
			m.mu.Unlock()
			select {
			case <-done:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if e.pins > 0 {
			m.mu.Unlock()
			return fmt.Errorf("%w: %q on %s", ErrInUse, adapter, replica)
		}
		m.wg.Add(1)
		e.state, e.done = evicting, make(chan struct{})
		m.mu.Unlock()

		err := m.call(r, "unload", adapter, "")
		m.mu.Lock()
		if err != nil {
			e.state = loaded
		} else {
			delete(r.entries, adapter)
		}
		close(e.done)
		m.wg.Done()
		m.mu.Unlock()
		return err
	}
}

// HotSwap replaces old with new on replica: it checks that new is
// registered, loads it, then unloads old, so the replica is never without
// an adapter to serve. If the load fails, old stays loaded.
func (m *Manager) HotSwap(ctx context.Context, replica, old, new string) error {
	m.mu.Lock()
	_, ok := m.adapters[new]
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownAdapter, new)
	}
	if err := m.Load(ctx, replica, new); err != nil {
		return err
	}
	return m.Unload(ctx, replica, old)
}

// List returns every registered adapter's status, by name; loadedOnly
// keeps those loaded on at least one replica.
func (m *Manager) List(loadedOnly bool) []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Status
	for name := range m.adapters {
		st := m.status(name)
		if !loadedOnly || len(st.LoadedOn) > 0 {
			out = append(out, st)
		}
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Adapter.Name, b.Adapter.Name) })
	return out
}

// Status returns one adapter's status.
func (m *Manager) Status(name string) (Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.adapters[name]; !ok {
		return Status{}, fmt.Errorf("%w: %q", ErrUnknownAdapter, name)
	}
	return m.status(name), nil
}

func (m *Manager) status(name string) Status {
	st := Status{Adapter: m.adapters[name]}
	for _, r := range m.replicas {
		e := r.entries[name]
		if e == nil {
			continue
		}
		if e.state == loaded {
			st.LoadedOn = append(st.LoadedOn, r.Name)
		}
		st.InUse += e.pins
		if e.lastUsed.After(st.LastUsed) {
			st.LastUsed = e.lastUsed
		}
	}
	slices.Sort(st.LoadedOn)
	return st
}

// Stats returns a snapshot of the counters and each replica's adapters.
func (m *Manager) Stats() Stats {
	st := Stats{
		Loads: m.loads.Load(), Unloads: m.unloads.Load(), Evictions: m.evictions.Load(),
		Failures: m.failures.Load(), Shared: m.shared.Load(), LoadTime: m.loadTime.Summary(),
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.replicas {
		rs := ReplicaStats{Name: r.Name}
		for n, e := range r.entries {
			if e.state == loaded {
				rs.Loaded = append(rs.Loaded, n)
			} else {
				rs.Busy++
			}
		}
		slices.Sort(rs.Loaded)
		st.Replicas = append(st.Replicas, rs)
	}
	slices.SortFunc(st.Replicas, func(a, b ReplicaStats) int { return strings.Compare(a.Name, b.Name) })
	return st
}

// Close cancels engine calls in progress, waits for them, and makes
// later calls return ErrClosed. It is idempotent. Adapters stay loaded on
// the engines.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	return nil
}

// call makes one engine call, bounded by Options.Timeout and Close, not by
// any caller's context: a load a caller abandons still finishes, so the
// manager's view matches the engine's.
func (m *Manager) call(r *replica, op, name, path string) error {
	ctx, cancel := context.WithTimeout(m.ctx, m.o.Timeout)
	defer cancel()
	body, _ := json.Marshal(map[string]string{"lora_name": name, "lora_path": path})
	if op == "unload" {
		body, _ = json.Marshal(map[string]string{"lora_name": name})
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.BaseURL+"/"+op+"_lora_adapter", bytes.NewReader(body))
	if err != nil {
		m.failures.Add(1)
		return fmt.Errorf("lora: %s %q on %s: %w", op, name, r.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if m.o.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+m.o.APIKey)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		m.failures.Add(1)
		return fmt.Errorf("lora: %s %q on %s: %w", op, name, r.Name, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	ok := resp.StatusCode == http.StatusOK ||
		// The engine already had it (a manager restart): the state we
		// wanted holds.
		(op == "load" && resp.StatusCode == http.StatusBadRequest && bytes.Contains(msg, []byte("already been loaded"))) ||
		(op == "unload" && resp.StatusCode == http.StatusNotFound)
	if !ok {
		m.failures.Add(1)
		return &EngineError{Replica: r.Name, Adapter: name, Op: op, Status: resp.StatusCode, Body: string(msg)}
	}
	if op == "load" {
		m.loads.Add(1)
	} else {
		m.unloads.Add(1)
	}
	return nil
}
