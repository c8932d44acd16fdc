package worldtime

import "time"

// Payload is a compact, versioned description of a world's clock that a
// client (a UE5 game client, a web page) evaluates locally: it needs one
// Payload when it joins and one more per change, never a per-second
// update. Encode it as JSON; every integer fits a double exactly, so
// Blueprint and JavaScript clients read it without loss.
//
// To evaluate at real time t (Unix microseconds; correct the client's
// clock with ServerTimeUnixUS and the round trip, NTP-style), pick the
// last segment whose RealEpochUnixUS ≤ t (or the first), then
//
//	game_us = GameEpochUS                                        if Paused
//	game_us = GameEpochUS + (t − RealEpochUnixUS) × ScaleGameNS / ScaleRealNS  otherwise
//
// and derive the calendar: day = game_us / 86,400,000,000 + 1, time of day
// = game_us mod 86,400,000,000; Ultra Dynamic Sky's Time of Day (0–2400) is
// time of day / 3,600,000,000 × 100; UE's
// SetTimeScale(RealSecondsPerGameHour) takes RealSecondsPerGameHour. The
// phase is the last of Phases whose StartHours ≤ the hour of day (or the
// last phase, before the first start).
type Payload struct {
	// V is the payload schema version; currently 1.
	V     int    `json:"v"`
	World string `json:"world"`
	// Version is the timeline version: a client that holds a Payload of
	// the same version is up to date.
	Version int64 `json:"version"`
	// ServerTimeUnixUS is the server's real time when it built the
	// payload, for clock-offset estimation.
	ServerTimeUnixUS int64 `json:"server_time_unix_us"`
	// Segments holds the segment in effect at ServerTimeUnixUS, then any
	// scheduled after it.
	Segments []PayloadSegment `json:"segments"`
	// Phases of the day, by start.
	Phases []PayloadPhase `json:"phases"`
}

// PayloadSegment is one timeline segment in client form.
type PayloadSegment struct {
	RealEpochUnixUS int64 `json:"real_epoch_unix_us"`
	GameEpochUS     int64 `json:"game_epoch_us"`
	ScaleGameNS     int64 `json:"scale_game_ns"`
	ScaleRealNS     int64 `json:"scale_real_ns"`
	Paused          bool  `json:"paused"`
	// RealSecondsPerGameHour is the scale in the original unit (0 when
	// paused), for UE's SetTimeScale.
	RealSecondsPerGameHour float64 `json:"real_seconds_per_game_hour"`
}

// PayloadPhase is a phase's name and start, in hours after midnight.
type PayloadPhase struct {
	Name       string  `json:"name"`
	StartHours float64 `json:"start_hours"`
}

// Payload returns the clock's Payload as of now.
func (c *Clock) Payload() Payload {
	now := c.now()
	tl := c.view.Load().tl
	i := tl.segmentAt(now.UnixNano())
	p := Payload{V: 1, World: c.world, Version: tl.Version, ServerTimeUnixUS: now.UnixMicro()}
	for _, s := range tl.Segments[i:] {
		ps := PayloadSegment{
			RealEpochUnixUS: s.RealEpoch.UnixMicro(), GameEpochUS: int64(s.GameEpoch),
			ScaleGameNS: int64(s.Scale.Game), ScaleRealNS: int64(s.Scale.Real), Paused: s.Paused,
		}
		if !s.Paused {
			ps.RealSecondsPerGameHour = s.Scale.RealSecondsPerGameHour()
		}
		p.Segments = append(p.Segments, ps)
	}
	for j, st := range c.cal.starts {
		p.Phases = append(p.Phases, PayloadPhase{Name: c.cal.phases[c.cal.startPhase[j]].Name, StartHours: float64(st) / float64(hourMicros)})
	}
	return p
}

// GameAt evaluates the payload at real time t the way a client does (in
// floating point, as the formula in [Payload] says). It exists so servers
// and tests can check what clients compute.
func (p Payload) GameAt(t time.Time) float64 {
	if len(p.Segments) == 0 {
		return 0
	}
	us := t.UnixMicro()
	s := p.Segments[0]
	for _, x := range p.Segments[1:] {
		if x.RealEpochUnixUS <= us {
			s = x
		}
	}
	if s.Paused || us <= s.RealEpochUnixUS {
		return float64(s.GameEpochUS)
	}
	return float64(s.GameEpochUS) + float64(us-s.RealEpochUnixUS)*float64(s.ScaleGameNS)/float64(s.ScaleRealNS)
}
