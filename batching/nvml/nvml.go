package nvml

import (
	"errors"
	"time"
)

// Errors.
var (
	// ErrUnavailable: NVML cannot be used here: no NVIDIA driver library,
	// no GPU, no permission, or a build without cgo.
	ErrUnavailable = errors.New("nvml: GPU telemetry unavailable")
	// ErrClosed: the Source was closed.
	ErrClosed = errors.New("nvml: source closed")
)

// Options configure a [Source].
type Options struct {
	// LibraryPath is the NVML shared library; "" means libnvidia-ml.so.1
	// on the loader's path.
	LibraryPath string
	// Devices are the indices of the GPUs to read; nil means all.
	Devices []int
	// Now stamps readings; nil means time.Now.
	Now func() time.Time
}

// Reading is one GPU's state at one moment.
type Reading struct {
	Index int
	UUID  string
	Name  string
	Time  time.Time
	// Utilization is the fraction of the last sample period in which a
	// kernel ran, 0..1; MemoryUtilization, the fraction in which device
	// memory was read or written.
	Utilization       float64
	MemoryUtilization float64
	// Memory in bytes.
	MemoryUsed, MemoryTotal uint64
}
