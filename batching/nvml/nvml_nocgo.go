//go:build !cgo

package nvml

import "fmt"

// Source reads GPUs through NVML; without cgo it cannot be created.
type Source struct{}

// New returns ErrUnavailable: NVML needs cgo.
func New(Options) (*Source, error) {
	return nil, fmt.Errorf("%w: built without cgo", ErrUnavailable)
}

// Sample returns ErrUnavailable.
func (*Source) Sample() ([]Reading, error) { return nil, ErrUnavailable }

// Close does nothing.
func (*Source) Close() error { return nil }
