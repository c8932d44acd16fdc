//go:build cgo

package nvml_test

import (
	"errors"
	"testing"
	"time"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/google/go-cmp/cmp"

	"github.com/bodybroker/sdk/batching/nvml"
)

// fakeGPUs is a mock NVML with n H200s whose readings the test sets.
type fakeGPUs struct {
	lib       *mock.Interface
	util      []gonvml.Utilization
	used      []uint64
	shutdowns int
}

func newFake(n int) *fakeGPUs {
	f := &fakeGPUs{util: make([]gonvml.Utilization, n), used: make([]uint64, n)}
	devs := make([]*mock.Device, n)
	for i := range devs {
		devs[i] = &mock.Device{
			GetUUIDFunc: func() (string, gonvml.Return) { return "GPU-" + string(rune('a'+i)), gonvml.SUCCESS },
			GetNameFunc: func() (string, gonvml.Return) { return "NVIDIA H200", gonvml.SUCCESS },
			GetUtilizationRatesFunc: func() (gonvml.Utilization, gonvml.Return) {
				return f.util[i], gonvml.SUCCESS
			},
			GetMemoryInfoFunc: func() (gonvml.Memory, gonvml.Return) {
				return gonvml.Memory{Total: 143771 << 20, Used: f.used[i], Free: 143771<<20 - f.used[i]}, gonvml.SUCCESS
			},
		}
	}
	f.lib = &mock.Interface{
		InitFunc:           func() gonvml.Return { return gonvml.SUCCESS },
		ShutdownFunc:       func() gonvml.Return { f.shutdowns++; return gonvml.SUCCESS },
		DeviceGetCountFunc: func() (int, gonvml.Return) { return n, gonvml.SUCCESS },
		DeviceGetHandleByIndexFunc: func(i int) (gonvml.Device, gonvml.Return) {
			return devs[i], gonvml.SUCCESS
		},
	}
	return f
}

func TestSampleTracksReadings(t *testing.T) {
	f := newFake(2)
	now := time.Unix(1_700_000_000, 0)
	src, err := nvml.NewFromInterface(f.lib, nvml.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	f.util[1] = gonvml.Utilization{Gpu: 87, Memory: 41}
	f.used[1] = 120 << 30
	got, err := src.Sample()
	if err != nil {
		t.Fatal(err)
	}
	want := []nvml.Reading{
		{Index: 0, UUID: "GPU-a", Name: "NVIDIA H200", Time: now, MemoryTotal: 143771 << 20},
		{Index: 1, UUID: "GPU-b", Name: "NVIDIA H200", Time: now, Utilization: 0.87, MemoryUtilization: 0.41, MemoryUsed: 120 << 30, MemoryTotal: 143771 << 20},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	src.Close()
	if f.shutdowns != 1 {
		t.Errorf("NVML shut down %d times, want 1", f.shutdowns)
	}
	if _, err := src.Sample(); !errors.Is(err, nvml.ErrClosed) {
		t.Errorf("Sample after Close = %v, want ErrClosed", err)
	}
}

func TestSelectedDevices(t *testing.T) {
	f := newFake(4)
	src, err := nvml.NewFromInterface(f.lib, nvml.Options{Devices: []int{2}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got, err := src.Sample()
	if err != nil || len(got) != 1 || got[0].Index != 2 {
		t.Errorf("Sample() = %+v, %v; want GPU 2 only", got, err)
	}
	if _, err := nvml.NewFromInterface(newFake(1).lib, nvml.Options{Devices: []int{3}}); err == nil || errors.Is(err, nvml.ErrUnavailable) {
		t.Errorf("Devices [3] of 1 GPU = %v, want a configuration error", err)
	}
}

func TestUnavailable(t *testing.T) {
	for name, lib := range map[string]*mock.Interface{
		"no library": {InitFunc: func() gonvml.Return { return gonvml.ERROR_LIBRARY_NOT_FOUND }},
		"no driver":  {InitFunc: func() gonvml.Return { return gonvml.ERROR_DRIVER_NOT_LOADED }},
		"no gpu": {
			InitFunc:           func() gonvml.Return { return gonvml.SUCCESS },
			ShutdownFunc:       func() gonvml.Return { return gonvml.SUCCESS },
			DeviceGetCountFunc: func() (int, gonvml.Return) { return 0, gonvml.SUCCESS },
		},
	} {
		if _, err := nvml.NewFromInterface(lib, nvml.Options{}); !errors.Is(err, nvml.ErrUnavailable) {
			t.Errorf("%s: New = %v, want ErrUnavailable", name, err)
		}
	}
	// The real loader with a library that does not exist: an error, not a
	// crash.
	if _, err := nvml.New(nvml.Options{LibraryPath: "/nonexistent/libnvidia-ml.so.1"}); !errors.Is(err, nvml.ErrUnavailable) {
		t.Errorf("New(missing library) = %v, want ErrUnavailable", err)
	}
}
