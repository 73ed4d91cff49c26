package storage

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// opener opens a file to read, anew for every pass over it (hashing,
// each attempt of an upload).
type opener func() (*os.File, error)

// openRegular opens the regular file at path for reading. A symbolic link
// in its place is refused, not followed (a step may have put one there
// after its outputs were listed), and so is anything but a regular file
// (a FIFO does not block the open: O_NONBLOCK).
func openRegular(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s: symbolic links are not stored in artifacts", path)
	}
	if err != nil {
		return nil, err
	}
	return regular(f, path)
}

// openRegularIn opens the regular file rel inside root: no component of
// the path may lead outside root (os.Root), whatever a step changed in the
// directory since it was listed.
func openRegularIn(root *os.Root, rel string) (*os.File, error) {
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	return regular(f, rel)
}

// regular returns f when it is a regular file, else closes it.
func regular(f *os.File, name string) (*os.File, error) {
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", name)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
