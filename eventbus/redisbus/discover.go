package redisbus

import (
	"time"
)

// Discovery: each pattern subscription's discoverer goroutine, started by
// Streams.Subscribe and stopped with the subscription, finds new topics in
// the topic set and joins their streams.

// discoverer adds the topics a pattern subscription matches as they appear.
func (s *streamSub) discoverer() {
	defer s.wg.Done()
	t := s.t
	tick := time.NewTicker(t.opts.DiscoverInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
		all, err := t.client.SMembers(s.ctx, t.registryKey()).Result()
		if err != nil {
			if s.ctx.Err() == nil {
				t.health.fail(err)
			}
			continue
		}
		have := map[string]bool{}
		for _, k := range s.keysSnapshot() {
			have[k] = true
		}
		for _, tp := range all {
			key := t.streamKey(tp)
			if have[key] || !s.pat.Match(tp) {
				continue
			}
			// A topic that appears after the subscription started holds
			// only events published since: start at its beginning.
			if err := s.ensureGroup(s.ctx, key, "0"); err != nil {
				continue
			}
			s.mu.Lock()
			s.keys = append(s.keys, key)
			s.mu.Unlock()
		}
	}
}
