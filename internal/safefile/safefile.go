// Package safefile opens files that a step could have replaced after
// mlpipe made or listed them (its task directory is mounted read-write
// into its container): a symbolic link in the last component of the path
// is refused, not followed, and anything but a regular file (a FIFO, a
// device) is refused without blocking the open.
package safefile

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrSymlink is the error (wrapped) for a path whose last component is a
// symbolic link.
var ErrSymlink = errors.New("is a symbolic link")

// ErrNotRegular is the error (wrapped) for a path that names something
// other than a regular file.
var ErrNotRegular = errors.New("is not a regular file")

// OpenRegular opens the regular file at path for reading. A missing file
// gives an error for which errors.Is(err, fs.ErrNotExist) holds.
func OpenRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s %w", path, ErrSymlink)
	}
	if err != nil {
		return nil, err
	}
	return Regular(f, path)
}

// Regular returns f when it is a regular file; otherwise it closes f and
// returns an error naming name.
func Regular(f *os.File, name string) (*os.File, error) {
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s %w", name, ErrNotRegular)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
