package storage

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/mlpipe/mlpipe/internal/safefile"
)

// opener opens a file to read, anew for every pass over it (hashing,
// each attempt of an upload).
type opener func() (*os.File, error)

// openRegular opens the regular file at path for reading. A symbolic link
// in its place is refused, not followed (a step may have put one there
// after its outputs were listed), and so is anything but a regular file.
func openRegular(path string) (*os.File, error) {
	f, err := safefile.OpenRegular(path)
	if errors.Is(err, safefile.ErrSymlink) {
		return nil, fmt.Errorf("%s: symbolic links are not stored in artifacts", path)
	}
	return f, err
}

// openRegularIn opens the regular file rel inside root: no component of
// the path may lead outside root (os.Root), whatever a step changed in the
// directory since it was listed.
func openRegularIn(root *os.Root, rel string) (*os.File, error) {
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	return safefile.Regular(f, rel)
}
