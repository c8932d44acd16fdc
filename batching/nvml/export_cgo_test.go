//go:build cgo

package nvml

import gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"

// NewFromInterface builds a Source over a mock NVML.
func NewFromInterface(lib gonvml.Interface, o Options) (*Source, error) { return newSource(lib, o) }
