package redisbus

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// slotCount is the number of hash slots of a Redis Cluster.
const slotCount = 16384

// slot returns the Redis Cluster hash slot of key: CRC16/XMODEM of the key,
// or of its hash tag (what lies between the first '{' and the next '}',
// when that is not empty), modulo 16384.
func slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % slotCount
}

// xreadgroup runs XREADGROUP on streams (keys, then one ID per key, as
// XREADGROUP takes them). On Redis Cluster one command may name only keys
// of one slot, so there the streams are split by slot and each part read in
// turn: while nothing has arrived, each read blocks for its share of block;
// once one has returned entries, the rest do not block. A pass over every
// slot therefore blocks at most about block, as one XREADGROUP would.
func (s *streamSub) xreadgroup(ctx context.Context, streams []string, block time.Duration) ([]redis.XStream, error) {
	t := s.t
	read := func(streams []string, block time.Duration) ([]redis.XStream, error) {
		return t.client.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: s.group, Consumer: t.opts.Consumer, Streams: streams,
			Count: t.opts.ReadCount, Block: block,
		}).Result()
	}
	if _, ok := t.client.(*redis.ClusterClient); !ok {
		return read(streams, block)
	}
	n := len(streams) / 2
	bySlot := map[int][]int{} // slot → indexes of its keys in streams
	var order []int
	for i, key := range streams[:n] {
		sl := slot(key)
		if _, ok := bySlot[sl]; !ok {
			order = append(order, sl)
		}
		bySlot[sl] = append(bySlot[sl], i)
	}
	if len(order) <= 1 {
		return read(streams, block)
	}
	share := block
	if block > 0 {
		share = max(block/time.Duration(len(order)), time.Millisecond)
	}
	var out []redis.XStream
	for _, sl := range order {
		idx := bySlot[sl]
		part := make([]string, 0, 2*len(idx))
		for _, i := range idx {
			part = append(part, streams[i])
		}
		for _, i := range idx {
			part = append(part, streams[n+i])
		}
		b := share
		if len(out) > 0 {
			b = -1 // something arrived: collect the rest without waiting
		}
		res, err := read(part, b)
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			if len(out) > 0 {
				return out, nil // deliver these; the next read meets the error again
			}
			return nil, err
		default:
			out = append(out, res...)
		}
	}
	if len(out) == 0 {
		return nil, redis.Nil
	}
	return out, nil
}
