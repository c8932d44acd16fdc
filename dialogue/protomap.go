package dialogue

import (
	"strings"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/bodybroker/sdk/dialogue/dialoguev1"
	"github.com/bodybroker/sdk/router"
)

func finishReason(r router.FinishReason) dialoguev1.FinishReason {
	switch r {
	case router.FinishLength:
		return dialoguev1.FinishReason_FINISH_REASON_LENGTH
	case router.FinishScripted:
		return dialoguev1.FinishReason_FINISH_REASON_SCRIPTED
	case router.FinishCancelled:
		return dialoguev1.FinishReason_FINISH_REASON_INTERRUPTED
	default:
		return dialoguev1.FinishReason_FINISH_REASON_STOP
	}
}

func finishName(r dialoguev1.FinishReason) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "FINISH_REASON_"))
}

func receiptProto(r router.Receipt) *dialoguev1.RouteReceipt {
	p := &dialoguev1.RouteReceipt{
		Tier: r.Tier, Replica: r.Replica, Model: r.Model,
		Attempts: int32(r.Attempts),
		Queued:   durationpb.New(r.Timing.Queued),
	}
	for _, reason := range r.Reasons {
		p.Reasons = append(p.Reasons, string(reason))
	}
	return p
}
