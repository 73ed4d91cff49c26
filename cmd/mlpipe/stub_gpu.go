package main

import "github.com/mlpipe/mlpipe/runner"

// gpuAllocator returns the GPU allocator, or nil and the reason there is
// none (the GPU issue).
func (a *app) gpuAllocator() (runner.GPUAllocator, string, func()) {
	return nil, "GPU support is not available yet", func() {}
}
