package sim

import (
	"context"
	"fmt"
	"iter"
	"time"

	"github.com/bodybroker/sdk/latency"
)

// Routing chooses the replica for each request in a [Run].
type Routing int

// Routing policies. Affinity policies hash a key to a replica, so that
// requests sharing a prompt prefix meet the same prefix cache; they do not
// spill, so an unlucky key can overload its replica.
const (
	// RouteLeastLoaded sends each request to the replica with the fewest
	// requests waiting or running (ties: the lowest index).
	RouteLeastLoaded Routing = iota
	// RouteSession hashes Request.SessionKey (falling back to the persona).
	RouteSession
	// RoutePersona hashes Request.PersonaKey.
	RoutePersona
	// RouteRoundRobin takes replicas in turn.
	RouteRoundRobin
)

// String names the policy.
func (r Routing) String() string {
	switch r {
	case RouteLeastLoaded:
		return "least-loaded"
	case RouteSession:
		return "session"
	case RoutePersona:
		return "persona"
	case RouteRoundRobin:
		return "round-robin"
	}
	return fmt.Sprintf("Routing(%d)", int(r))
}

// SLO is a service-level objective for one request: time to first token
// and mean inter-token latency (time per output token after the first).
type SLO struct {
	TTFT time.Duration
	ITL  time.Duration
}

// DefaultSLO is what a player waiting on an NPC tolerates: the first word
// within a second, then words faster than reading speed.
var DefaultSLO = SLO{TTFT: time.Second, ITL: 100 * time.Millisecond}

// Options configures a [Run]. The zero value runs one default engine
// (see [Config]) with least-loaded routing against [DefaultSLO].
type Options struct {
	Engine   Config
	Replicas int // 0 means 1
	Routing  Routing
	SLO      SLO // zero fields mean DefaultSLO's
}

// Report is what a [Run] measured, on the simulated clock.
type Report struct {
	// Duration is the simulated time from the start to the last token.
	Duration time.Duration
	// Requests is the number of requests offered; Completed finished.
	Requests  int
	Completed int
	// Rejected could never run on the engine (ErrTooLarge).
	Rejected int
	// TTFT, ITL (every gap between two tokens of one reply) and E2E
	// (arrival to last token).
	TTFT, ITL, E2E latency.Summary
	PromptTokens   int64
	OutputTokens   int64
	// Throughput is output tokens per simulated second.
	Throughput float64
	// Goodput is completed requests per simulated second that met the
	// SLO (TTFT, and mean ITL); SLOAttainment is their share of Completed.
	Goodput       float64
	SLOAttainment float64
	// PrefixCacheHitRate is the share of prompt tokens served from the
	// prefix cache.
	PrefixCacheHitRate float64
	Preemptions        int
	Steps              int64
	// MeanBatch is the mean number of sequences per step.
	MeanBatch float64
}

type collector struct {
	slo                 SLO
	ttft, itl, e2e      latency.Histogram
	completed, good     int
	prompt, out, cached int64
	preempts            int
	steps, batched      int64
	busy                time.Duration
}

func (c *collector) token(s *seq, now time.Duration) {
	if s.gen == 1 {
		c.ttft.Record(now - s.req.Arrival)
	} else {
		c.itl.Record(now - s.last)
	}
}

func (c *collector) finish(s *seq, now time.Duration) {
	c.completed++
	c.e2e.Record(now - s.req.Arrival)
	c.prompt += int64(s.req.PromptTokens())
	c.cached += int64(s.cached)
	c.out += int64(s.gen)
	ok := s.first-s.req.Arrival <= c.slo.TTFT
	if s.gen > 1 && (s.last-s.first)/time.Duration(s.gen-1) > c.slo.ITL {
		ok = false
	}
	if ok {
		c.good++
	}
}

func (c *collector) preempt(*seq) { c.preempts++ }

func (c *collector) stepDone(batch int, dt time.Duration) {
	c.busy += dt
	c.steps++
	c.batched += int64(batch)
}

func (o Options) withDefaults() (Options, error) {
	var err error
	if o.Engine, err = o.Engine.withDefaults(); err != nil {
		return o, err
	}
	if o.Replicas < 0 {
		return o, fmt.Errorf("%w: Options.Replicas is negative (%d)", ErrInvalidConfig, o.Replicas)
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.Routing < RouteLeastLoaded || o.Routing > RouteRoundRobin {
		return o, fmt.Errorf("%w: unknown %v", ErrInvalidConfig, o.Routing)
	}
	if o.SLO.TTFT < 0 || o.SLO.ITL < 0 {
		return o, fmt.Errorf("%w: negative SLO %+v", ErrInvalidConfig, o.SLO)
	}
	if o.SLO.TTFT == 0 {
		o.SLO.TTFT = DefaultSLO.TTFT
	}
	if o.SLO.ITL == 0 {
		o.SLO.ITL = DefaultSLO.ITL
	}
	return o, nil
}

// Run simulates requests (in arrival order) on opts.Replicas engines on
// its own virtual clock and reports what players would have seen. It
// takes no wall-clock time beyond the computation and uses one goroutine.
//
// A request that arrives earlier than the one before it is an error
// (ErrInvalidConfig), as is a malformed one; a request no engine could
// ever hold is counted in Report.Rejected. ctx is checked every few
// thousand steps.
func Run(ctx context.Context, opts Options, requests iter.Seq[Request]) (*Report, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	col := &collector{slo: opts.SLO}
	engines := make([]*engine, opts.Replicas)
	for i := range engines {
		engines[i] = newEngine(opts.Engine, col)
	}
	rr := 0
	route := func(r *Request) *engine {
		switch opts.Routing {
		case RouteSession, RoutePersona:
			k := r.PersonaKey
			if opts.Routing == RouteSession && r.SessionKey != "" {
				k = r.SessionKey
			}
			return engines[fnv64a(k)%uint64(len(engines))]
		case RouteRoundRobin:
			rr++
			return engines[rr%len(engines)]
		}
		best := engines[0]
		for _, e := range engines[1:] {
			if e.load() < best.load() {
				best = e
			}
		}
		return best
	}
	rep := &Report{}
	next, stop := iter.Pull(requests)
	defer stop()
	pending, more := next()
	var last, end, kickedAt time.Duration
	var kicked []*engine
	for n := 0; ; n++ {
		if n&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		// The engine whose step ends first.
		var first *engine
		for _, e := range engines {
			if e.busy && (first == nil || e.stepEnd < first.stepEnd) {
				first = e
			}
		}
		// Arrivals at one instant all reach an idle engine before it
		// plans its step.
		if more && (first == nil || pending.Arrival <= first.stepEnd) && (len(kicked) == 0 || pending.Arrival <= kickedAt) {
			r := pending
			pending, more = next()
			if r.Arrival < last {
				return nil, fmt.Errorf("%w: request arrives at %v, before the previous one at %v", ErrInvalidConfig, r.Arrival, last)
			}
			last = r.Arrival
			rep.Requests++
			e := route(&r)
			if err := e.admissible(&r); err != nil {
				if err := r.validate(); err != nil {
					return nil, err
				}
				rep.Rejected++
				continue
			}
			e.enqueue(&seq{req: r})
			if !e.busy && !e.kicked {
				e.now, e.kicked = r.Arrival, true
				kicked, kickedAt = append(kicked, e), r.Arrival
			}
			continue
		}
		if len(kicked) > 0 {
			for _, e := range kicked {
				e.kicked = false
				e.plan()
			}
			kicked = kicked[:0]
			continue
		}
		if first == nil {
			break
		}
		first.complete()
		end = max(end, first.now)
		first.plan()
	}
	rep.Duration = end
	rep.Completed = col.completed
	rep.TTFT, rep.ITL, rep.E2E = col.ttft.Summary(), col.itl.Summary(), col.e2e.Summary()
	rep.PromptTokens, rep.OutputTokens = col.prompt, col.out
	rep.Preemptions, rep.Steps = col.preempts, col.steps
	if secs := end.Seconds(); secs > 0 {
		rep.Throughput = float64(col.out) / secs
		rep.Goodput = float64(col.good) / secs
	}
	if col.completed > 0 {
		rep.SLOAttainment = float64(col.good) / float64(col.completed)
	}
	if col.prompt > 0 {
		rep.PrefixCacheHitRate = float64(col.cached) / float64(col.prompt)
	}
	if col.steps > 0 {
		rep.MeanBatch = float64(col.batched) / float64(col.steps)
	}
	return rep, nil
}

// fnv64a hashes a routing key; fixed, so that runs are reproducible.
func fnv64a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
