//go:build !linux

package gpu

import (
	"os"
	"path/filepath"
	"syscall"
)

// openat opens name in the directory dir by path (syscall has no openat
// here); the last component is still never followed (O_NOFOLLOW).
func openat(dir *os.File, name string, flags int, mode uint32) (int, error) {
	return syscall.Open(filepath.Join(dir.Name(), name), flags, mode)
}
