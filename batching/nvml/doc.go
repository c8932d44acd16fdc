// Package nvml reads GPU utilization and memory through NVIDIA's NVML
// library (github.com/NVIDIA/go-nvml), the same counters nvidia-smi
// shows, as a telemetry source for an adaptive limiter or a dashboard.
//
// NVML is loaded at run time (dlopen of libnvidia-ml.so.1): a binary that
// imports this package starts and runs on machines without a GPU. There,
// [New] returns an error matching [ErrUnavailable] (no driver library, no
// device, no permission), and nothing crashes. Built without cgo, New
// always returns ErrUnavailable.
//
// # Usage
//
//	src, err := nvml.New(nvml.Options{})
//	if errors.Is(err, nvml.ErrUnavailable) {
//		// no GPU here: run without GPU telemetry
//	}
//	defer src.Close()
//	readings, err := src.Sample()
//	// readings[0].Utilization, readings[0].MemoryUsed …
//
// NVML's utilization is the fraction of the last sample period (1/6 s to
// 1 s, by product) in which a kernel ran: a busy GPU reads near 1 even
// when its batch is small, so it is a weak signal for batch sizing; KV
// usage and queueing from the engine's /metrics (batching/vllmmetrics)
// are stronger.
//
// # Concurrency
//
// A Source is safe for concurrent use and owns no goroutine. The caller
// must call [Source.Close], which shuts NVML down; it is idempotent.
package nvml
