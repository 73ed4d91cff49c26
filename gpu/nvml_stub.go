//go:build !linux || !cgo

package gpu

import "fmt"

// Options configure Open.
type Options struct {
	Mock        string
	LibraryPath string
	Busy        func(uuid string) bool
}

// Open reports that GPU support is not compiled in: go-nvml needs cgo.
func Open(Options) (Inventory, error) {
	return nil, fmt.Errorf("%w: GPU support is not compiled in (mlpipe was built without cgo)", ErrNVMLUnavailable)
}
