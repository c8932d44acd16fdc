package settings

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// UE5's names for the built-in scalability keys in [ScalabilityGroups].
var ueScalability = map[string]string{
	"video.view_distance":   "sg.ViewDistanceQuality",
	"video.anti_aliasing":   "sg.AntiAliasingQuality",
	"video.shadows":         "sg.ShadowQuality",
	"video.post_processing": "sg.PostProcessQuality",
	"video.textures":        "sg.TextureQuality",
	"video.effects":         "sg.EffectsQuality",
	"video.foliage":         "sg.FoliageQuality",
	"video.shading":         "sg.ShadingQuality",
}

// ueWindowMode maps video.window_mode (the original's numbering) to UE5's
// EWindowMode: 0 Fullscreen, 1 WindowedFullscreen, 2 Windowed.
var ueWindowMode = map[int64]int{WindowFullscreen: 0, WindowWindowedFullscreen: 1, WindowWindowed: 2}

// INISection is the section ExportINI writes keys that UE5's
// GameUserSettings does not have.
const INISection = "/Script/BodyBroker.BodyBrokerSettings"

// ExportINI renders r in the sections of UE5's GameUserSettings.ini, so
// a UE client loads it natively: [/Script/Engine.GameUserSettings]
// (resolution, fullscreen mode translated to UE's numbering, vsync,
// frame-rate limit, the confirmed-video-mode fields), [ScalabilityGroups]
// (sg.* levels) and, for every other key, [INISection] with the dotted
// key names; bindings become "+KeyBindings=(Action=…,Key=…)" lines.
// Output is deterministic.
func ExportINI(r *Resolved) []byte {
	var b bytes.Buffer
	done := map[string]bool{}
	get := func(k string) any { return r.values[k] }
	b.WriteString("[/Script/Engine.GameUserSettings]\n")
	// Keys of another type than the built-in schema's (a studio's own
	// schema reusing a name) are left to the last section.
	if v, ok := get("video.vsync").(bool); ok {
		done["video.vsync"] = true
		fmt.Fprintf(&b, "bUseVSync=%s\n", iniBool(v))
	}
	if v, ok := get("video.resolution").(string); ok {
		if w, h, ok := strings.Cut(v, "x"); ok {
			done["video.resolution"] = true
			fmt.Fprintf(&b, "ResolutionSizeX=%s\nResolutionSizeY=%s\n", w, h)
			fmt.Fprintf(&b, "LastUserConfirmedResolutionSizeX=%s\nLastUserConfirmedResolutionSizeY=%s\n", w, h)
		}
	}
	if v, ok := get("video.window_mode").(int64); ok {
		m := ueWindowMode[v]
		done["video.window_mode"] = true
		fmt.Fprintf(&b, "FullscreenMode=%d\nLastConfirmedFullscreenMode=%d\nPreferredFullscreenMode=%d\n", m, m, m)
	}
	if v, ok := get("video.frame_rate_limit").(int64); ok {
		done["video.frame_rate_limit"] = true
		fmt.Fprintf(&b, "FrameRateLimit=%.6f\n", float64(v))
	}
	b.WriteString("Version=5\n\n[ScalabilityGroups]\nsg.ResolutionQuality=100\n")
	for _, k := range scalabilityGroups {
		if v, ok := get(k).(int64); ok {
			done[k] = true
			fmt.Fprintf(&b, "%s=%d\n", ueScalability[k], v)
		}
	}
	if _, ok := get("video.quality").(int64); ok {
		done["video.quality"] = true // expanded into the groups above
	}
	fmt.Fprintf(&b, "\n[%s]\n", INISection)
	for _, k := range r.keys {
		if done[k] {
			continue
		}
		switch v := r.values[k].(type) {
		case map[string]string:
			for _, a := range slices.Sorted(maps.Keys(v)) {
				fmt.Fprintf(&b, "+KeyBindings=(Action=%q,Key=%q)\n", a, v[a])
			}
		case bool:
			fmt.Fprintf(&b, "%s=%s\n", k, iniBool(v))
		case float64:
			fmt.Fprintf(&b, "%s=%s\n", k, strconv.FormatFloat(v, 'f', -1, 64))
		case string:
			fmt.Fprintf(&b, "%s=%s\n", k, strconv.Quote(v))
		default:
			fmt.Fprintf(&b, "%s=%v\n", k, v)
		}
	}
	return b.Bytes()
}

func iniBool(v bool) string {
	if v {
		return "True"
	}
	return "False"
}

// Exported is the JSON export of resolved settings for non-UE clients.
type Exported struct {
	Version int            `json:"version"`
	Values  map[string]any `json:"values"`
	// Labels holds the display label of each value that has one (enum
	// values: players never see raw numbers).
	Labels map[string]string `json:"labels"`
	// Revs holds the stored revision of each key the player set, to send
	// back as Change.IfRev.
	Revs map[string]int64 `json:"revs,omitempty"`
}

// ExportJSON renders r for clients: values, their display labels and
// revisions, keys sorted.
func ExportJSON(s *Schema, r *Resolved) ([]byte, error) {
	return json.Marshal(Export(s, r))
}

// Export returns r as an Exported value.
func Export(s *Schema, r *Resolved) Exported {
	e := Exported{Version: s.version, Values: r.Values(), Labels: map[string]string{}, Revs: map[string]int64{}}
	for k, v := range e.Values {
		if st, ok := s.byKey[k]; ok {
			if l := st.Label(v); l != "" {
				e.Labels[k] = l
			}
		}
		if rev := r.revs[k]; rev > 0 {
			e.Revs[k] = rev
		}
	}
	return e
}
