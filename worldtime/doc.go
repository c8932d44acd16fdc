// Package worldtime is one authoritative game clock for a fleet of game
// servers: game time as a timeline of segments, a calendar with phases
// (dawn, day, dusk, night), day/phase/hour events computed from the
// timeline, and timers that run on game time.
//
// # Timeline, not tick
//
// A world's time is a [Timeline] of [Segment]s. Within a segment,
//
//	game time = GameEpoch + (real now − RealEpoch) × Scale
//
// and a paused segment stands still. Pause, resume, scale changes, skips
// and sets append a segment, optionally effective at a future real instant
// ([Change.At]) so that every server and client switches at the same
// moment. Game time is an [Instant]: integer game microseconds since 00:00
// on day 1, computed exactly from the segment's epoch (nothing accumulates,
// so no fraction is ever lost, at any scale). It never goes backwards
// unless set back, which is an event of its own ([EventSetBack]).
//
// # Units
//
// A [Scale] is an exact ratio: Game of game time per Real of real time.
// The original system's time_scale was real seconds per game hour (default
// 60: a 24-minute day); [RealSecondsPerGameHour] accepts that unit and
// [Scale.RealSecondsPerGameHour] returns it, usable as UE's
// SetTimeScale(RealSecondsPerGameHour). [Multiplier] (game seconds per real
// second, 60 for the default) and [DayLength] (real length of a game day)
// are the other forms; Multiplier = 3600 / RealSecondsPerGameHour.
// Defaults match the original: 60 s per game hour, starting at 07:00 on
// day 1, phases dawn 05–07, day 07–18, dusk 18–20, night 20–05.
//
// # Usage
//
//	clock, err := worldtime.New(ctx, worldtime.Options{
//		World: "day-world",
//		Store: store, // worldtime/redisstore to share the clock across servers
//		Bus:   bus,   // optional: world.time.phase, .hour, .day events
//	})
//	defer clock.Close()
//	t := clock.Now() // day, hour, minute, "HH:MM", phase, weekday, year, moon
//	clock.Observe(func(ev worldtime.Event) { ... })          // phase, hour, day changes
//	clock.Every(t.Instant.Add(3*time.Hour), 3*time.Hour, grow) // crops, every 3 game hours
//	clock.Skip(ctx, 8*time.Hour)                             // sleep through the night
//
// [Clock.Now] is cheap (no lock, no allocation): call it whenever you need
// the time rather than caching it.
//
// # Events
//
// The next boundary (hour, phase or day) is computed from the timeline,
// so the clock sleeps until it and never polls. A skip (or a forward set)
// delivers every boundary it crosses, in order, with Skipped set; with
// [CoalesceLatest] only the last of each kind (and Stats counts the rest).
// At one instant, a day event comes before a phase event before an hour
// event, and timers due at that instant run after them. Observers
// ([Clock.Observe]) run in order on the clock's goroutine; with
// Options.Bus set, the same events are published as [PhaseChanged],
// [HourChanged], [DayChanged] and [TimeSet] on [TopicPhase], [TopicHour],
// [TopicDay] and [TopicSet], keyed by world ID, a skip's boundaries in one
// PublishBatch. There is no per-tick event: a consumer that only needs the
// latest phase subscribes with the bus's KeepLatest overflow policy. The
// original system's day_world_activated and night_world_activated are
// world.time.phase events with To "day" and "night".
//
// # Timers
//
// [Clock.AtGame], [Clock.After] and [Clock.Every] run a callback at a game
// time or every game interval. They are keyed by game time, so pausing
// freezes them and a scale change re-maps them without touching them.
// Timers due at the same instant run in the order they were scheduled. A
// million pending timers cost no goroutines: they live in coarse
// game-time buckets sorted when game time reaches them (about 44 bytes
// each plus the callback, up to twice that while buckets grow; see
// Options.MaxTimers, Stats.TimerBytes and BenchmarkTimers).
//
// # Several servers, several worlds
//
// One [Clock] keeps one world's time; a process runs one per world (day
// and night worlds, shards). A [Store] holds each world's timeline with
// versions the store issues: [MemoryStore] in one process,
// worldtime/redisstore across a fleet. The first clock creates the
// timeline; the others load it (one round trip) and reload it when the
// store announces a change (a [Watcher], as the Redis store is, over
// pub/sub) and at least every Options.Refresh, so a change reaches every
// server within a round trip, or that interval if a notification is lost;
// schedule changes that far ahead to switch everywhere at the same instant.
// Concurrent changes are compare-and-swap: Apply re-applies a change on
// top of a concurrent one, or with [Change.IfVersion] fails with
// [ErrConflict]; nothing is half-applied. Two servers evaluating the same
// real instant agree to within their clock skew × scale. With a Bus on
// every server, each publishes each boundary under the same event ID, so
// subscribers with a DedupWindow see it once.
//
// # Errors
//
// Invalid input (scales that are negative, NaN or absurd, phases that
// overlap or leave gaps, set-time out of range) returns a *[ValueError]
// matching [ErrInvalid]; store conflicts match [ErrConflict]; use of a
// closed clock, [ErrClosed].
//
// # Concurrency
//
// [Clock] and [MemoryStore] are safe for concurrent use. Each Clock runs
// one goroutine (none with Options.Manual, where [Clock.Tick] delivers
// events instead) that [Clock.Close] stops and waits for. Callbacks and
// observers run on that goroutine, one at a time; they may schedule and
// cancel timers and read the clock, but must not block for long or call
// Close.
package worldtime
