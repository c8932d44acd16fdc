package audio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrBadWAV: bytes that are not a PCM WAV file this package can read.
var ErrBadWAV = errors.New("audio: not a PCM WAV file")

// WAV describes a PCM WAV file: its format and where its samples are.
type WAV struct {
	SampleRate    int
	Channels      int
	BitsPerSample int
	// Data is the sample bytes (little-endian, interleaved), a sub-slice
	// of the parsed file.
	Data []byte
}

// Duration is the length of the samples.
func (w WAV) Duration() time.Duration {
	frame := w.Channels * w.BitsPerSample / 8
	if frame == 0 || w.SampleRate == 0 {
		return 0
	}
	frames := len(w.Data) / frame
	return time.Duration(frames) * time.Second / time.Duration(w.SampleRate)
}

// RMSDB returns the root-mean-square level of 16-bit samples in dBFS
// (−Inf for digital silence); other sample widths give NaN.
func (w WAV) RMSDB() float64 {
	if w.BitsPerSample != 16 {
		return math.NaN()
	}
	n := len(w.Data) / 2
	if n == 0 {
		return math.Inf(-1)
	}
	var sum float64
	for i := range n {
		s := float64(int16(binary.LittleEndian.Uint16(w.Data[2*i:]))) / 32768
		sum += s * s
	}
	return DB(math.Sqrt(sum / float64(n)))
}

// ParseWAV reads a RIFF/WAVE file with integer PCM samples (format 1, or
// WAVE_FORMAT_EXTENSIBLE with PCM). It tolerates a streamed file whose
// RIFF and data sizes are placeholders (0 or 0xFFFFFFFF-ish): the data
// then runs to the end of the input. Anything else gives ErrBadWAV.
func ParseWAV(b []byte) (WAV, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return WAV{}, fmt.Errorf("%w: no RIFF/WAVE header", ErrBadWAV)
	}
	var w WAV
	haveFmt := false
	for p := 12; p+8 <= len(b); {
		id := string(b[p : p+4])
		size := int64(binary.LittleEndian.Uint32(b[p+4 : p+8]))
		body := b[p+8:]
		switch id {
		case "fmt ":
			if size < 16 || int64(len(body)) < size {
				return WAV{}, fmt.Errorf("%w: short fmt chunk", ErrBadWAV)
			}
			format := binary.LittleEndian.Uint16(body[0:2])
			if format == 0xFFFE && size >= 40 {
				format = binary.LittleEndian.Uint16(body[24:26])
			}
			if format != 1 {
				return WAV{}, fmt.Errorf("%w: format %d is not PCM", ErrBadWAV, format)
			}
			w.Channels = int(binary.LittleEndian.Uint16(body[2:4]))
			w.SampleRate = int(binary.LittleEndian.Uint32(body[4:8]))
			w.BitsPerSample = int(binary.LittleEndian.Uint16(body[14:16]))
			if w.Channels == 0 || w.SampleRate == 0 || w.BitsPerSample == 0 || w.BitsPerSample%8 != 0 || w.BitsPerSample > 32 {
				return WAV{}, fmt.Errorf("%w: %d channels, %d Hz, %d bits", ErrBadWAV, w.Channels, w.SampleRate, w.BitsPerSample)
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return WAV{}, fmt.Errorf("%w: data before fmt", ErrBadWAV)
			}
			if size == 0 || size > int64(len(body)) {
				size = int64(len(body)) // a streamed file's placeholder size
			}
			frame := w.Channels * w.BitsPerSample / 8
			w.Data = body[:size-size%int64(frame)]
			return w, nil
		}
		if size > int64(len(body)) {
			break
		}
		p += 8 + int(size) + int(size&1)
	}
	return WAV{}, fmt.Errorf("%w: no data chunk", ErrBadWAV)
}

// EncodeWAV returns a 16-bit PCM WAV file holding samples.
func EncodeWAV(sampleRate, channels int, samples []int16) []byte {
	data := 2 * len(samples)
	b := make([]byte, 44+data)
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+data))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
	binary.LittleEndian.PutUint16(b[22:], uint16(channels))
	binary.LittleEndian.PutUint32(b[24:], uint32(sampleRate))
	binary.LittleEndian.PutUint32(b[28:], uint32(sampleRate*channels*2))
	binary.LittleEndian.PutUint16(b[32:], uint16(channels*2))
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(data))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(s))
	}
	return b
}

// FixWAVSizes rewrites the RIFF and data chunk sizes of a canonical
// 44-byte-header WAV produced by a streaming encoder (espeak-ng --stdout
// writes placeholders) to match len(b). Other layouts are left alone.
func FixWAVSizes(b []byte) {
	if len(b) < 44 || string(b[0:4]) != "RIFF" || string(b[36:40]) != "data" {
		return
	}
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	binary.LittleEndian.PutUint32(b[40:], uint32(len(b)-44))
}
