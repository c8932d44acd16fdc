//go:build cgo

package nvml

import (
	"fmt"
	"sync"
	"time"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"
)

// Source reads GPUs through NVML.
type Source struct {
	lib     gonvml.Interface
	now     func() time.Time
	mu      sync.Mutex
	closed  bool
	devices []device
}

type device struct {
	index      int
	h          gonvml.Device
	uuid, name string
}

// New loads NVML, initialises it and finds the devices. Without a usable
// NVML it returns an error matching ErrUnavailable.
func New(o Options) (*Source, error) {
	var opts []gonvml.LibraryOption
	if o.LibraryPath != "" {
		opts = append(opts, gonvml.WithLibraryPath(o.LibraryPath))
	}
	return newSource(gonvml.New(opts...), o)
}

func newSource(lib gonvml.Interface, o Options) (*Source, error) {
	if ret := lib.Init(); ret != gonvml.SUCCESS {
		return nil, fmt.Errorf("%w: init: %s", ErrUnavailable, errorString(ret))
	}
	s := &Source{lib: lib, now: o.Now}
	if s.now == nil {
		s.now = time.Now
	}
	n, ret := lib.DeviceGetCount()
	if ret != gonvml.SUCCESS {
		lib.Shutdown()
		return nil, fmt.Errorf("%w: device count: %s", ErrUnavailable, errorString(ret))
	}
	indices := o.Devices
	if indices == nil {
		for i := range n {
			indices = append(indices, i)
		}
	}
	if len(indices) == 0 {
		lib.Shutdown()
		return nil, fmt.Errorf("%w: no GPU", ErrUnavailable)
	}
	for _, i := range indices {
		if i < 0 || i >= n {
			lib.Shutdown()
			return nil, fmt.Errorf("nvml: Options.Devices: index %d, but %d GPUs", i, n)
		}
		h, ret := lib.DeviceGetHandleByIndex(i)
		if ret != gonvml.SUCCESS {
			lib.Shutdown()
			return nil, fmt.Errorf("%w: device %d: %s", ErrUnavailable, i, errorString(ret))
		}
		d := device{index: i, h: h}
		d.uuid, _ = h.GetUUID()
		d.name, _ = h.GetName()
		s.devices = append(s.devices, d)
	}
	return s, nil
}

// Sample reads every configured GPU once.
func (s *Source) Sample() ([]Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	now := s.now()
	out := make([]Reading, 0, len(s.devices))
	for _, d := range s.devices {
		u, ret := d.h.GetUtilizationRates()
		if ret != gonvml.SUCCESS {
			return nil, fmt.Errorf("nvml: utilization of GPU %d: %s", d.index, errorString(ret))
		}
		m, ret := d.h.GetMemoryInfo()
		if ret != gonvml.SUCCESS {
			return nil, fmt.Errorf("nvml: memory of GPU %d: %s", d.index, errorString(ret))
		}
		out = append(out, Reading{
			Index: d.index, UUID: d.uuid, Name: d.name, Time: now,
			Utilization:       min(float64(u.Gpu)/100, 1),
			MemoryUtilization: min(float64(u.Memory)/100, 1),
			MemoryUsed:        m.Used, MemoryTotal: m.Total,
		})
	}
	return out, nil
}

// Close shuts NVML down. It is idempotent.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if ret := s.lib.Shutdown(); ret != gonvml.SUCCESS {
		return fmt.Errorf("nvml: shutdown: %s", errorString(ret))
	}
	return nil
}

// errorString names a return code without calling into NVML, which may
// not be loaded (its ErrorString needs the library).
func errorString(r gonvml.Return) string {
	switch r {
	case gonvml.ERROR_LIBRARY_NOT_FOUND:
		return "NVML library not found (no NVIDIA driver)"
	case gonvml.ERROR_DRIVER_NOT_LOADED:
		return "NVIDIA driver not loaded"
	case gonvml.ERROR_NO_PERMISSION:
		return "no permission"
	case gonvml.ERROR_UNINITIALIZED:
		return "NVML not initialised"
	case gonvml.ERROR_NOT_SUPPORTED:
		return "not supported by this GPU"
	case gonvml.ERROR_GPU_IS_LOST:
		return "GPU lost"
	}
	return fmt.Sprintf("NVML return code %d", int32(r))
}
