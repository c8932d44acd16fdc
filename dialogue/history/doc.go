// Package history is the conversation memory of the dialogue service: the
// [Store] seam, the [Conversation] and [Turn] it keeps, the errors stores
// return, and [MemoryStore], the bounded in-process default.
//
// It links neither grpc nor protobuf nor Redis, so that store backends
// (dialogue/redisstore) and the conformance suite
// (dialogue/dialoguetest.TestStore) build on it without linking the
// dialogue service.
//
// # Bounds
//
// Every store bounds what one player can make it hold: turns and bytes per
// conversation (the oldest turns go first), conversations per player (that
// player's least recently active one goes first) and idle time. The
// defaults are [DefaultTTL], [DefaultMaxTurns],
// [DefaultMaxConversationBytes] and [DefaultMaxSessionsPerPlayer];
// [MemoryStore] also holds at most [DefaultMaxBytes] in all.
//
// # Concurrency
//
// Every [Store] is safe for concurrent use. [MemoryStore] starts no
// goroutines and needs no closing.
package history
