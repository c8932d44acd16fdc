package redisbus

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/bodybroker/sdk/eventbus"
)

// Wire format of an envelope (one stream field "e", or one pub/sub message):
//
//	version   byte (1)
//	id        16 bytes
//	time      varint  Unix nanoseconds of Event.Time (0: zero time)
//	published varint  Unix nanoseconds of the Publish call
//	topic, type, source, key: uvarint length + bytes each
//	headers   uvarint count, then key and value as above
//	payload   uvarint length + bytes
const wireVersion = 1

var errMalformed = errors.New("redisbus: malformed envelope")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func encode(ev *eventbus.Event, published time.Time) []byte {
	n := 1 + 16 + 20 + 5*4 + len(ev.Topic) + len(ev.Type) + len(ev.Source) + len(ev.Key) + len(ev.Payload)
	for k, v := range ev.Headers {
		n += len(k) + len(v) + 4
	}
	b := make([]byte, 0, n)
	b = append(b, wireVersion)
	b = append(b, ev.ID[:]...)
	var t int64
	if !ev.Time.IsZero() {
		t = ev.Time.UnixNano()
	}
	b = binary.AppendVarint(b, t)
	var p int64
	if !published.IsZero() {
		p = published.UnixNano()
	}
	b = binary.AppendVarint(b, p)
	b = appendString(b, ev.Topic)
	b = appendString(b, ev.Type)
	b = appendString(b, ev.Source)
	b = appendString(b, ev.Key)
	b = binary.AppendUvarint(b, uint64(len(ev.Headers)))
	for k, v := range ev.Headers {
		b = appendString(b, k)
		b = appendString(b, v)
	}
	b = binary.AppendUvarint(b, uint64(len(ev.Payload)))
	return append(b, ev.Payload...)
}

type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err || n > uint64(len(d.b)) {
		d.err = true
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string { return string(d.bytes()) }

func decode(data []byte) (ev eventbus.Event, published time.Time, err error) {
	if len(data) < 17 || data[0] != wireVersion {
		return ev, published, errMalformed
	}
	copy(ev.ID[:], data[1:17])
	d := decoder{b: data[17:]}
	if t := d.varint(); t != 0 {
		ev.Time = time.Unix(0, t)
	}
	if p := d.varint(); p != 0 {
		published = time.Unix(0, p)
	}
	ev.Topic = d.str()
	ev.Type = d.str()
	ev.Source = d.str()
	ev.Key = d.str()
	if nh := d.uvarint(); nh > 0 && !d.err {
		if nh > uint64(len(d.b)) {
			return ev, published, errMalformed
		}
		ev.Headers = make(map[string]string, nh)
		for i := uint64(0); i < nh && !d.err; i++ {
			k := d.str()
			ev.Headers[k] = d.str()
		}
	}
	if p := d.bytes(); len(p) > 0 {
		ev.Payload = p
	} else if !d.err {
		ev.Payload = []byte{}
	}
	if d.err {
		return eventbus.Event{}, time.Time{}, errMalformed
	}
	return ev, published, nil
}

// payloadField returns the envelope bytes of a stream entry's values.
func payloadField(values map[string]any) ([]byte, bool) {
	switch v := values["e"].(type) {
	case string:
		return []byte(v), true
	case []byte:
		return v, true
	}
	return nil, false
}
