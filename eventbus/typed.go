package eventbus

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	"google.golang.org/protobuf/proto"
)

// PublishOption adjusts the envelope of a typed Publish.
type PublishOption func(*Event)

// WithKey sets the event's Key (entity or player ID).
func WithKey(key string) PublishOption { return func(e *Event) { e.Key = key } }

// WithType overrides the event's Type (by default the Go type's name, or the
// protobuf message's full name).
func WithType(typ string) PublishOption { return func(e *Event) { e.Type = typ } }

// WithHeader adds a header.
func WithHeader(k, v string) PublishOption {
	return func(e *Event) {
		if e.Headers == nil {
			e.Headers = make(map[string]string, 1)
		}
		e.Headers[k] = v
	}
}

// WithID sets the event's ID (to make a retried publish recognisable).
func WithID(id ID) PublishOption { return func(e *Event) { e.ID = id } }

// Publish encodes v and publishes it on topic: protobuf when T (or *T) is a
// proto.Message, JSON otherwise. The event's Type is the protobuf message's
// full name or the Go type's name unless WithType says otherwise.
func Publish[T any](ctx context.Context, b *Bus, topic string, v T, opts ...PublishOption) error {
	payload, typ, err := Encode(v)
	if err != nil {
		return err
	}
	ev := Event{Type: typ, Payload: payload}
	for _, o := range opts {
		o(&ev)
	}
	return b.Publish(ctx, topic, ev)
}

// Encode returns the payload and type name Publish[T] would use for v.
func Encode[T any](v T) (payload []byte, typ string, err error) {
	if m, ok := protoOf(&v); ok {
		payload, err = proto.Marshal(m)
		if err != nil {
			return nil, "", fmt.Errorf("eventbus: encoding %s: %w", typeName[T](), err)
		}
		return payload, string(m.ProtoReflect().Descriptor().FullName()), nil
	}
	payload, err = json.Marshal(v)
	if err != nil {
		return nil, "", fmt.Errorf("eventbus: encoding %s: %w", typeName[T](), err)
	}
	return payload, typeName[T](), nil
}

// Decode decodes ev's payload as a T, the way Handle[T] does. The error is a
// *DecodeError.
func Decode[T any](ev Event) (T, error) {
	var v T
	var err error
	if m, ok := protoTarget(&v); ok {
		err = proto.Unmarshal(ev.Payload, m)
	} else {
		err = json.Unmarshal(ev.Payload, &v)
	}
	if err != nil {
		var zero T
		return zero, &DecodeError{Topic: ev.Topic, ID: ev.ID, Type: typeName[T](), Err: err}
	}
	return v, nil
}

// Handle adapts a typed function to a Handler. A payload that does not decode
// as a T is not retried: the event goes to the dead-letter topic with the
// *DecodeError.
func Handle[T any](fn func(ctx context.Context, ev Event, v T) error) Handler {
	return func(ctx context.Context, ev Event) error {
		v, err := Decode[T](ev)
		if err != nil {
			return err
		}
		return fn(ctx, ev, v)
	}
}

func typeName[T any]() string {
	t := reflect.TypeFor[T]()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.String()
}

// protoOf returns *p as a proto.Message for encoding: T itself when it is a
// message (usually a pointer type), else *T when that is.
func protoOf[T any](p *T) (proto.Message, bool) {
	if m, ok := any(*p).(proto.Message); ok {
		if reflect.ValueOf(m).IsNil() {
			return m.ProtoReflect().Type().Zero().Interface(), true
		}
		return m, true
	}
	if m, ok := any(p).(proto.Message); ok {
		return m, true
	}
	return nil, false
}

// protoTarget returns a message to unmarshal into that fills *p: for a
// pointer message type it allocates a new message and stores it in *p.
func protoTarget[T any](p *T) (proto.Message, bool) {
	if m, ok := any(*p).(proto.Message); ok {
		nm := m.ProtoReflect().New().Interface()
		*p = nm.(T)
		return nm, true
	}
	if m, ok := any(p).(proto.Message); ok {
		return m, true
	}
	return nil, false
}
