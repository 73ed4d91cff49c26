package gpu

import (
	"os"
	"runtime"
	"syscall"
)

// openat opens name relative to the open directory dir, so that the
// directory checked when the allocator was made is the one used even if
// its path is later made to point elsewhere.
func openat(dir *os.File, name string, flags int, mode uint32) (int, error) {
	fd, err := syscall.Openat(int(dir.Fd()), name, flags, mode)
	runtime.KeepAlive(dir)
	return fd, err
}
