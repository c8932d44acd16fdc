package openai

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// maxEventSize bounds one SSE event; a longer one is a malformed stream.
const maxEventSize = 1 << 20

// errEventTooLarge is wrapped in a *StreamError.
var errEventTooLarge = errors.New("SSE event larger than 1 MiB")

// sseReader reads the data of Server-Sent Events. It implements the parts
// of the SSE format that OpenAI-compatible servers use: "data:" fields
// (several lines of one event are joined with "\n"), comments (":") and the
// fields "event", "id" and "retry", which it ignores. Lines end with "\n"
// or "\r\n"; a lone "\r" (which no OpenAI-compatible server sends) is not
// a line end.
//
// It also notes whether it returned any event, and the first line that is
// no SSE field at all (an HTML page, a JSON body), so that a body that was
// never an event stream can be told from a truncated one.
type sseReader struct {
	r       *bufio.Reader
	data    []byte
	has     bool
	events  bool   // an event was returned
	foreign []byte // the first line with an unknown field, at most 256 bytes
}

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{r: bufio.NewReaderSize(r, 4096)}
}

// next returns the data of the next event. The slice is valid until the
// next call. It returns io.EOF when the input ends cleanly between events,
// io.ErrUnexpectedEOF when it ends inside one, and other read errors as
// they are.
func (s *sseReader) next() ([]byte, error) {
	s.data = s.data[:0]
	s.has = false
	for {
		line, err := s.readLine()
		if err != nil {
			if err == io.EOF && (s.has || len(line) > 0) {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if len(line) == 0 {
			if s.has {
				s.events = true
				return s.data, nil
			}
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		if string(field) != "data" {
			if s.foreign == nil && string(field) != "event" && string(field) != "id" && string(field) != "retry" {
				s.foreign = append([]byte(nil), line[:min(len(line), 256)]...)
			}
			continue
		}
		if len(s.data)+len(value)+1 > maxEventSize {
			return nil, errEventTooLarge
		}
		if s.has {
			s.data = append(s.data, '\n')
		}
		s.data = append(s.data, value...)
		s.has = true
	}
}

// readLine returns one line without its terminator. A final line without
// a terminator is returned with io.EOF.
func (s *sseReader) readLine() ([]byte, error) {
	line, err := s.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		// A long line: collect it.
		buf := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			if len(buf) > maxEventSize {
				return nil, errEventTooLarge
			}
			line, err = s.r.ReadSlice('\n')
			buf = append(buf, line...)
		}
		line = buf
	}
	if err != nil {
		if err == io.EOF {
			return line, io.EOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}
