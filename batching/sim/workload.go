package sim

import (
	"container/heap"
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// Class is one kind of NPC exchange in a [Workload].
type Class struct {
	// Name labels the class's requests (Request.Class).
	Name string
	// Share is the class's share of new conversations; shares are
	// normalised, so they need not sum to 1.
	Share float64
	// NewTokens and OutputTokens are the mean lengths of a turn's new
	// input and of the reply; each turn draws them from a log-normal
	// distribution (σ = 0.5) around these means.
	NewTokens, OutputTokens int
	// Turns is the mean number of turns in a conversation (geometric; 1
	// means every conversation is a single line, like a bark).
	Turns float64
	// Priority is Request.Priority for the class (lower is more urgent).
	Priority int
}

// NPCClasses returns the default mix: barks (short one-liners, most
// frequent, least urgent), dialogue (a few turns) and story-critical
// conversations (long replies, most urgent).
func NPCClasses() []Class {
	return []Class{
		{Name: "bark", Share: 0.55, NewTokens: 30, OutputTokens: 20, Turns: 1, Priority: 2},
		{Name: "dialogue", Share: 0.35, NewTokens: 60, OutputTokens: 60, Turns: 4, Priority: 1},
		{Name: "story", Share: 0.10, NewTokens: 120, OutputTokens: 150, Turns: 6, Priority: 0},
	}
}

// Workload generates NPC dialogue traffic: conversations start as a
// Poisson process, each with a class, an NPC persona (Zipf-popular, so a
// few NPCs get most of the traffic) and a number of turns; each turn's
// prompt is the persona prefix, the conversation so far and the new input.
// Turns follow one another after the reply's expected duration plus an
// exponential think time, independent of how the engine performs (an open
// loop). The zero value of each field means its documented default.
type Workload struct {
	// Players is the number of concurrent players; required.
	Players int
	// Duration is how long the workload runs; default one hour. A
	// conversation still open then ends (its later turns are not sent),
	// so the offered rate stays steady to the end.
	Duration time.Duration
	// ConversationsPerPlayerHour is how often a player starts talking to
	// an NPC; default 30 (every two minutes).
	ConversationsPerPlayerHour float64
	// Classes is the mix; nil means NPCClasses().
	Classes []Class
	// Personas is the number of distinct NPC personas; default 200.
	// PersonaTokens is each persona's prefix (persona and lore); default
	// 800.
	Personas      int
	PersonaTokens int
	// ThinkTime is the mean time a player takes between a reply and the
	// next turn; default 8 s.
	ThinkTime time.Duration
	// Adapters, when positive, gives each persona one of that many LoRA
	// adapters ("lora-0", …); 0 means the base model.
	Adapters int
	// Seed makes the workload reproducible.
	Seed uint64
}

func (w Workload) withDefaults() (Workload, error) {
	if w.Players <= 0 {
		return w, fmt.Errorf("%w: Workload.Players must be positive (%d)", ErrInvalidConfig, w.Players)
	}
	if w.Duration < 0 || w.ConversationsPerPlayerHour < 0 || w.Personas < 0 || w.PersonaTokens < 0 || w.ThinkTime < 0 || w.Adapters < 0 {
		return w, fmt.Errorf("%w: negative Workload field in %+v", ErrInvalidConfig, w)
	}
	if w.Duration == 0 {
		w.Duration = time.Hour
	}
	if w.ConversationsPerPlayerHour == 0 {
		w.ConversationsPerPlayerHour = 30
	}
	if w.Classes == nil {
		w.Classes = NPCClasses()
	}
	if len(w.Classes) == 0 {
		return w, fmt.Errorf("%w: Workload.Classes is empty", ErrInvalidConfig)
	}
	total := 0.0
	for _, c := range w.Classes {
		if c.Share < 0 || c.NewTokens < 1 || c.OutputTokens < 1 || c.Turns < 1 || math.IsNaN(c.Share+c.Turns) {
			return w, fmt.Errorf("%w: class %q needs Share ≥ 0, NewTokens, OutputTokens ≥ 1 and Turns ≥ 1", ErrInvalidConfig, c.Name)
		}
		total += c.Share
	}
	if total <= 0 {
		return w, fmt.Errorf("%w: class shares sum to zero", ErrInvalidConfig)
	}
	if w.Personas == 0 {
		w.Personas = 200
	}
	if w.PersonaTokens == 0 {
		w.PersonaTokens = 800
	}
	if w.ThinkTime == 0 {
		w.ThinkTime = 8 * time.Second
	}
	return w, nil
}

// Rate is the mean number of requests per second the workload offers.
func (w Workload) Rate() float64 {
	w, err := w.withDefaults()
	if err != nil {
		return 0
	}
	total, turns := 0.0, 0.0
	for _, c := range w.Classes {
		total += c.Share
		turns += c.Share * c.Turns
	}
	return float64(w.Players) * w.ConversationsPerPlayerHour / 3600 * turns / total
}

type conversation struct {
	next    time.Duration
	id      int64
	class   *Class
	persona int
	history int
	turns   int // turns left, this one included
	key     string
}

type convHeap []*conversation

func (h convHeap) Len() int { return len(h) }
func (h convHeap) Less(i, j int) bool {
	if h[i].next != h[j].next {
		return h[i].next < h[j].next
	}
	return h[i].id < h[j].id
}
func (h convHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *convHeap) Push(x any)   { *h = append(*h, x.(*conversation)) }
func (h *convHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// Requests returns the workload's requests in arrival order. The sequence
// is generated lazily (memory grows with open conversations, not with the
// duration) and is the same for the same Workload every time it is
// iterated.
func (w Workload) Requests() (iter.Seq[Request], error) {
	w, err := w.withDefaults()
	if err != nil {
		return nil, err
	}
	personaKeys := make([]string, w.Personas)
	for i := range personaKeys {
		personaKeys[i] = "persona-" + strconv.Itoa(i)
	}
	var adapters []string
	for i := range w.Adapters {
		adapters = append(adapters, "lora-"+strconv.Itoa(i))
	}
	total := 0.0
	for _, c := range w.Classes {
		total += c.Share
	}
	rate := float64(w.Players) * w.ConversationsPerPlayerHour / 3600 // conversations per second
	return func(yield func(Request) bool) {
		rng := rand.New(rand.NewPCG(w.Seed, w.Seed^0x9e3779b97f4a7c15))
		persona := func() int { return 0 }
		if w.Personas > 1 {
			zipf := rand.NewZipf(rng, 1.1, 1, uint64(w.Personas-1))
			persona = func() int { return int(zipf.Uint64()) }
		}
		logn := func(mean int) int {
			// Log-normal with the given mean, σ = 0.5.
			const sigma = 0.5
			v := float64(mean) * math.Exp(sigma*rng.NormFloat64()-sigma*sigma/2)
			return max(1, int(math.Round(v)))
		}
		exp := func(mean time.Duration) time.Duration {
			return time.Duration(rng.ExpFloat64() * float64(mean))
		}
		var open convHeap
		var id int64
		nextStart := time.Duration(rng.ExpFloat64() / rate * float64(time.Second))
		for {
			var c *conversation
			if nextStart < w.Duration && (len(open) == 0 || nextStart <= open[0].next) {
				id++
				u := rng.Float64() * total
				cl := &w.Classes[len(w.Classes)-1]
				for i := range w.Classes {
					if u < w.Classes[i].Share {
						cl = &w.Classes[i]
						break
					}
					u -= w.Classes[i].Share
				}
				turns := 1
				if cl.Turns > 1 {
					// Geometric with mean cl.Turns.
					p := 1 / cl.Turns
					turns = 1 + int(math.Floor(math.Log(1-rng.Float64())/math.Log(1-p)))
				}
				c = &conversation{next: nextStart, id: id, class: cl, persona: persona(), turns: turns}
				if turns > 1 {
					c.key = "session-" + strconv.FormatInt(id, 10)
				}
				nextStart += time.Duration(rng.ExpFloat64() / rate * float64(time.Second))
			} else if len(open) > 0 {
				c = heap.Pop(&open).(*conversation)
			} else {
				return
			}
			r := Request{
				Arrival:       c.next,
				PersonaKey:    personaKeys[c.persona],
				PersonaTokens: w.PersonaTokens,
				SessionKey:    c.key,
				HistoryTokens: c.history,
				NewTokens:     logn(c.class.NewTokens),
				OutputTokens:  logn(c.class.OutputTokens),
				Priority:      c.class.Priority,
				Class:         c.class.Name,
			}
			if len(adapters) > 0 {
				r.Adapter = adapters[c.persona%len(adapters)]
			}
			if !yield(r) {
				return
			}
			c.turns--
			if c.turns > 0 {
				c.history += r.NewTokens + r.OutputTokens
				// The reply takes about 20 ms a token to stream, then
				// the player reads and answers.
				c.next += time.Duration(r.OutputTokens)*20*time.Millisecond + exp(w.ThinkTime)
				if c.next < w.Duration {
					heap.Push(&open, c)
				}
			}
		}
	}, nil
}
