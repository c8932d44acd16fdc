package audio

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAdapters(t *testing.T) {
	cues := []Cue{
		{Kind: CuePlay, At: t0, Voice: &Voice{Sound: "Thunder", Volume: 0.8}},
		{Kind: CueBusGain, At: t0, Bus: &BusState{Name: "music", Volume: 0.5}},
		{Kind: CueDuck, At: t0, Duck: &DuckState{Rule: "dialogue", Ramp: Ramp{To: 1, Duration: 200 * time.Millisecond}}},
		{Kind: CueCrossfade, At: t0, Crossfade: &Crossfade{Slot: SlotTimeOfDay, To: "MS_NightAmbient", ToGain: 1, Duration: 30 * time.Second}},
		{Kind: CueStop, At: t0, Voice: &Voice{Sound: "Thunder"}},
	}
	tests := []struct {
		a    Adapter
		want []EngineCommand
	}{
		{WwiseAdapter(), []EngineCommand{
			{Kind: "post_event", Target: "Play_Thunder", Value: 0.8, At: t0},
			{Kind: "set_rtpc", Target: "Volume_music", Value: 50, At: t0},
			{Kind: "set_rtpc", Target: "Duck_dialogue", Value: 100, At: t0, Fade: 200 * time.Millisecond},
			{Kind: "set_state", Target: "time_of_day", State: "MS_NightAmbient", Value: 1, At: t0, Fade: 30 * time.Second},
			{Kind: "post_event", Target: "Stop_Thunder", At: t0},
		}},
		{FMODAdapter(), []EngineCommand{
			{Kind: "start_event", Target: "event:/Thunder", Value: 0.8, At: t0},
			{Kind: "set_vca_volume", Target: "vca:/music", Value: 0.5, At: t0},
			{Kind: "set_snapshot_intensity", Target: "snapshot:/Duck_dialogue", Value: 1, At: t0, Fade: 200 * time.Millisecond},
			{Kind: "set_parameter_label", Target: "time_of_day", State: "MS_NightAmbient", Value: 1, At: t0, Fade: 30 * time.Second},
			{Kind: "stop_event", Target: "event:/Thunder", At: t0},
		}},
		{MetaSoundsAdapter(), []EngineCommand{
			{Kind: "play_metasound", Target: "Thunder", Value: 0.8, At: t0},
			{Kind: "set_control_bus", Target: "Bus_music", Value: 0.5, At: t0},
			{Kind: "set_control_bus_mix", Target: "Duck_dialogue", Value: 1, At: t0, Fade: 200 * time.Millisecond},
			{Kind: "set_parameter", Target: "Ambient.time_of_day", State: "MS_NightAmbient", Value: 1, At: t0, Fade: 30 * time.Second},
			{Kind: "stop_metasound", Target: "Thunder", At: t0},
		}},
	}
	for _, tt := range tests {
		var got []EngineCommand
		for _, c := range cues {
			got = append(got, tt.a.Translate(c)...)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.a.Name, diff)
		}
	}
	if got := (Adapter{}).Translate(cues[0]); got != nil {
		t.Errorf("empty adapter: %v", got)
	}
}
