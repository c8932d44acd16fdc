package nvml_test

import (
	"errors"
	"testing"

	"github.com/bodybroker/sdk/batching/nvml"
)

// On this machine or any other: New either works and reads every GPU, or
// says ErrUnavailable. It never crashes, with or without cgo.
func TestNewOnThisMachine(t *testing.T) {
	src, err := nvml.New(nvml.Options{})
	if errors.Is(err, nvml.ErrUnavailable) {
		t.Logf("no GPU telemetry here: %v", err)
		return
	}
	if err != nil {
		t.Fatalf("New = %v, want success or ErrUnavailable", err)
	}
	defer src.Close()
	rs, err := src.Sample()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.MemoryTotal == 0 || r.Utilization < 0 || r.Utilization > 1 {
			t.Errorf("implausible reading %+v", r)
		}
	}
}
