package router

import (
	"context"
	"io"
	"strings"
	"time"
)

// Role is the author of a chat message.
type Role string

// Chat roles, as the OpenAI-compatible chat API names them.
const (
	RoleSystem    Role = "system"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
)

// Message is one chat message.
type Message struct {
	Role    Role
	Content string
}

// Responsibility is what a line is for. The router's policy maps it to a
// tier; see [DefaultResponsibilityTiers].
type Responsibility string

// Responsibilities known to the default policy. Studios may define their own
// values and map them with a policy of their own.
const (
	Greeting              Responsibility = "greeting"
	Farewell              Responsibility = "farewell"
	GenericDialogue       Responsibility = "generic"
	SimpleResponse        Responsibility = "simple"
	EliteDialogue         Responsibility = "elite_dialogue"
	QuestDialogue         Responsibility = "quest_dialogue"
	ComplexQuestion       Responsibility = "complex_question"
	StoryProgression      Responsibility = "story_progression"
	MajorNPC              Responsibility = "major_npc"
	Personalized          Responsibility = "personalized"
	CharacterDevelopment  Responsibility = "character_development"
	StoryCritical         Responsibility = "story_critical"
	ResponsibilityUnknown Responsibility = ""
)

// Importance is how much an NPC matters to the story.
type Importance int

// NPC importance levels, lowest first. The zero value is ImportanceUnset,
// which the policy skips.
const (
	ImportanceUnset Importance = iota
	Generic
	Elite
	Major
)

// String returns the importance's lower-case name.
func (i Importance) String() string {
	switch i {
	case Generic:
		return "generic"
	case Elite:
		return "elite"
	case Major:
		return "major"
	default:
		return "unset"
	}
}

// Request is one completion request as the router and every [Model] see it.
//
// Messages is the prompt. The routing fields (Responsibility, Importance,
// Tier, AffinityKey) choose where it runs; the sampling fields say how.
// Zero values mean "use the tier's default".
type Request struct {
	Messages []Message

	// Routing.
	Responsibility Responsibility
	Importance     Importance
	// Tier, when non-empty, names the tier explicitly and overrides the
	// policy.
	Tier string
	// AffinityKey (a conversation or persona ID) keeps requests that share
	// a prompt prefix on the same replica while it has room.
	AffinityKey string
	// NPC identifies the speaking NPC (a persona ID). The router does not
	// route on it; backends such as router/scripted pick lines by it.
	NPC string
	// FairnessKey (a player or party ID) shares a tier's queue fairly:
	// queued requests of one importance level are served round-robin
	// across fairness keys, so one chatty player cannot starve the others.
	// Empty means the request is its own key.
	FairnessKey string
	// PromptTokens estimates the prompt's size in tokens, for limiters that
	// count tokens ([Limiter]). Zero means one token per 4 bytes of message
	// text; negative is an error ([ErrInvalidRequest]).
	PromptTokens int

	// Sampling. Zero means the tier's default.
	//
	// MaxTokens limits the reply. Zero means the tier's MaxTokens, or
	// [DefaultMaxTokens] when the tier sets none; a tier's MaxTokens is
	// also the ceiling. The limit is sent to the backend and enforced by
	// the router as well: a backend that ignores it has its stream ended
	// after MaxTokens text deltas (or MaxTokens × [ReplyBytesPerToken]
	// bytes of text, cut on a UTF-8 boundary), with a last delta carrying
	// [FinishLength], exactly as if the backend had stopped there, and its
	// request cancelled. Negative is an error ([ErrInvalidRequest]).
	MaxTokens   int
	Temperature *float64
	Stop        []string
	// Adapter is a LoRA adapter name; empty means the tier's adapter, if
	// any. OpenAI-compatible servers (vLLM) address an adapter as a model.
	Adapter string
	// Model overrides the tier's model name for this request.
	//
	// Adapter and Model apply on the tier the policy chose; a fallback or
	// hedge tier uses its own, since another tier's adapter would not be
	// loaded there.
	Model string
	// Priority is passed to engines that schedule by it (vLLM's
	// "priority"; lower runs sooner there). The router sets it from
	// Importance when it is zero.
	Priority int
}

// FinishReason says why a completion ended.
type FinishReason string

// Finish reasons reported by OpenAI-compatible servers, plus the router's own.
const (
	FinishStop      FinishReason = "stop"
	FinishLength    FinishReason = "length"
	FinishCancelled FinishReason = "cancelled"
	FinishScripted  FinishReason = "scripted"
)

// Usage counts the tokens of one completion, as the backend reported them.
//
// Reported says whether the backend reported the counts at all: the zero
// Usage (Reported false) means "not reported", and zero counts then say
// nothing, while a reported zero is a zero. In a [Delta], where Usage is a
// pointer, a nil Usage is not reported and a non-nil one is, whatever its
// Reported field says.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
	Reported         bool
}

// Delta is one piece of a streamed completion. Text is the new text since
// the previous Delta; the last Delta of a successful stream has a non-empty
// FinishReason and, where the backend reports it, Usage.
type Delta struct {
	Text         string
	FinishReason FinishReason
	Usage        *Usage
}

// Stream is a completion in progress. Recv returns the next Delta, io.EOF
// after the final one, or an error. Close releases the stream and cancels
// the request if it is still running; it is safe to call more than once and
// must be called even after io.EOF.
//
// Recv must return promptly (with an error) once the context given to
// [Model.Stream] is cancelled: the router's stall guard and hedging rely on
// it.
type Stream interface {
	Recv() (Delta, error)
	Close() error
}

// Response is a complete (unary) completion.
type Response struct {
	Text         string
	FinishReason FinishReason
	Usage        Usage
	// Model is the model (or adapter) name that served the request.
	Model string
}

// Collect reads s to its end into a Response served by model, and closes
// it: a Model whose Generate is its own Stream drained (a scripted or
// simulated backend) implements Generate with it. The finish reason is the
// last one s reported, and Usage is the last usage s reported (with
// Reported set), if any.
func Collect(s Stream, model string) (*Response, error) {
	defer s.Close()
	resp := &Response{Model: model}
	var b strings.Builder
	for {
		d, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		b.WriteString(d.Text)
		if d.FinishReason != "" {
			resp.FinishReason = d.FinishReason
		}
		if d.Usage != nil {
			resp.Usage = *d.Usage
			resp.Usage.Reported = true
		}
	}
	resp.Text = b.String()
	return resp, nil
}

// Model is one replica of one model server: the seam between the router and
// an inference backend. Implementations must be safe for concurrent use.
//
// Stream must return before the first token arrives only with an error that
// happened before any token was produced; the router treats such errors as
// retryable on another tier. Errors that happen after the first token come
// from Stream.Recv.
type Model interface {
	Generate(ctx context.Context, req Request) (*Response, error)
	Stream(ctx context.Context, req Request) (Stream, error)
}

// Timing is what the router measured for one request.
type Timing struct {
	// Queued is the time spent waiting for admission.
	Queued time.Duration
	// TTFT is the time from the router's call to the first token.
	TTFT time.Duration
	// PredictedTTFT is the router's estimate at admission time.
	PredictedTTFT time.Duration
	// Total is the time from the call to the last token.
	Total time.Duration
}

// Reason is one step of a routing decision, recorded in a [Receipt].
type Reason string

// Reasons a [Receipt] may list.
const (
	ReasonExplicitTier   Reason = "explicit_tier"  // Request.Tier named the tier
	ReasonResponsibility Reason = "responsibility" // the policy mapped Responsibility
	ReasonImportance     Reason = "importance"     // the policy mapped Importance
	ReasonDefault        Reason = "default"        // the default tier
	ReasonAffinity       Reason = "affinity"       // the affinity key picked the replica
	ReasonSpill          Reason = "spill"          // the affinity replica was full
	ReasonLeastLoaded    Reason = "least_loaded"   // power-of-two choices picked the replica
	ReasonDowngrade      Reason = "downgrade"      // the tier was saturated
	ReasonCircuitOpen    Reason = "circuit_open"   // the replica's breaker was open
	ReasonBackendError   Reason = "backend_error"  // the replica failed before the first token
	ReasonPredictedLate  Reason = "predicted_late" // the tier would likely miss the deadline
	ReasonHedge          Reason = "hedge"          // a hedged request won
	ReasonFallback       Reason = "fallback"       // a fallback tier served the request
)

// Receipt says how one request was routed. Every response carries one.
type Receipt struct {
	// Tier and Replica name what served the request (or last tried to).
	Tier    string
	Replica string
	// Model is the model or adapter name sent to the backend.
	Model string
	// Reasons lists the decisions in the order they were taken.
	Reasons []Reason
	// Attempts is the number of tiers tried, 1 when the first one served.
	Attempts int
	Timing   Timing
}
