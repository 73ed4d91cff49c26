// Package gpu gives each pipeline step its own NVIDIA GPUs.
//
// It reads the devices through NVML (github.com/NVIDIA/go-nvml, only in
// files built with cgo; without cgo, Open reports that GPU support is not
// compiled in), or through go-nvml's mock servers (dgxa100, dgxh100) for
// tests and demos. The allocation policy (Choose) is pure: it matches a
// request's count and type, skips busy devices and picks the best-connected
// set for multi-GPU steps. Leases are lock files, one per GPU UUID,
// held with flock, so two mlpipe processes never hold the same GPU and a
// crashed holder's GPUs come free when the kernel drops its locks; each
// lock file also carries its holder's record, written through the locked
// descriptor. The lock directory must be owned by root or by the user, and
// no file in it is opened through a symbolic link or created other than
// exclusively. The Allocator queues steps until their GPUs are free (a
// large request is not starved by a stream of small ones) and samples the
// GPUs while a step runs.
package gpu
