package redisbus

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/bodybroker/sdk/eventbus"
)

// Replay positions: History and where a consumer group starts for a
// SubscribeOptions.From (AfterID, FromTime), in stream IDs.

// History implements eventbus.Transport with XRANGE.
func (t *Streams) History(ctx context.Context, topic string, from eventbus.Position, limit int) ([]eventbus.Event, error) {
	key := t.streamKey(topic)
	start := "-"
	filter := false
	switch {
	case from.IsStart() || from.IsZero():
	default:
		if id, ok := from.AfterIDValue(); ok {
			sid, exact, err := t.resolveAfterID(ctx, key, id)
			if err != nil {
				return nil, err
			}
			if sid == "$" {
				return nil, nil
			}
			start, filter = "("+sid, !exact
			if sid == "0" {
				start = "-"
			}
		} else if tm, ok := from.TimeValue(); ok {
			start, filter = strconv.FormatInt(max(0, tm.Add(-t.opts.ClockSkew).UnixMilli()), 10)+"-0", true
		}
	}
	var out []eventbus.Event
	const page = 1000
	for {
		msgs, err := t.client.XRangeN(ctx, key, start, "+", page).Result()
		if err != nil {
			t.health.fail(err)
			return nil, err
		}
		t.health.ok()
		for _, m := range msgs {
			data, ok := payloadField(m.Values)
			if !ok {
				continue
			}
			ev, _, err := decode(data)
			if err != nil {
				continue
			}
			ev.Topic = topic
			if filter && !from.Includes(&ev) {
				continue
			}
			out = append(out, ev)
			if limit > 0 && len(out) >= limit {
				return out, nil
			}
		}
		if len(msgs) < page {
			return out, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// resolveAfterID finds the stream entry of the event with the given ID. It
// returns that entry's stream ID with exact=true; or, when the event is no
// longer retained, the stream ID just before the first entry whose event ID
// sorts after id; or "$" when no retained entry sorts after it.
func (t *Streams) resolveAfterID(ctx context.Context, key string, id eventbus.ID) (sid string, exact bool, err error) {
	ms := id.Time().UnixMilli()
	start := strconv.FormatInt(max(0, ms-t.opts.ClockSkew.Milliseconds()), 10) + "-0"
	limit := ms + t.opts.ClockSkew.Milliseconds()
	firstAfter := ""
	const page = 500
	for {
		msgs, err := t.client.XRangeN(ctx, key, start, "+", page).Result()
		if err != nil {
			t.health.fail(err)
			return "", false, err
		}
		for _, m := range msgs {
			if data, ok := payloadField(m.Values); ok {
				if ev, _, err := decode(data); err == nil {
					if ev.ID == id {
						return m.ID, true, nil
					}
					if firstAfter == "" && ev.ID.Compare(id) > 0 {
						firstAfter = prevStreamID(m.ID)
					}
				}
			}
			if entryMs(m.ID) > limit {
				if firstAfter != "" {
					return firstAfter, false, nil
				}
				return prevStreamID(m.ID), false, nil
			}
		}
		if len(msgs) < page {
			break
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
	if firstAfter != "" {
		return firstAfter, false, nil
	}
	return "$", false, nil // nothing retained sorts after id
}

func entryMs(sid string) int64 {
	i := strings.IndexByte(sid, '-')
	if i < 0 {
		i = len(sid)
	}
	ms, _ := strconv.ParseInt(sid[:i], 10, 64)
	return ms
}

// prevStreamID returns the largest stream ID below sid.
func prevStreamID(sid string) string {
	i := strings.IndexByte(sid, '-')
	if i < 0 {
		return sid
	}
	ms, _ := strconv.ParseUint(sid[:i], 10, 64)
	seq, _ := strconv.ParseUint(sid[i+1:], 10, 64)
	switch {
	case seq > 0:
		return fmt.Sprintf("%d-%d", ms, seq-1)
	case ms > 0:
		return fmt.Sprintf("%d-%d", ms-1, uint64(1<<64-1))
	}
	return "0"
}

// startID is the consumer-group start (last delivered ID) for a position.
func (t *Streams) startID(ctx context.Context, key string, from eventbus.Position) (string, error) {
	switch {
	case from.IsZero():
		return "$", nil
	case from.IsStart():
		return "0", nil
	}
	if id, ok := from.AfterIDValue(); ok {
		sid, _, err := t.resolveAfterID(ctx, key, id)
		return sid, err
	}
	tm, _ := from.TimeValue()
	return prevStreamID(strconv.FormatInt(max(0, tm.UnixMilli()), 10) + "-0"), nil
}
