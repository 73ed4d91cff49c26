package runner

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// A container step has its task directory mounted read-write, so it can
// leave a symbolic link where mlpipe later writes or reads a file of that
// directory (its log, executor input and output, parameter files). These
// helpers refuse to follow a link there: mlpipe never writes or reads
// another file of the host on a step's behalf.

// createNoFollow creates or truncates the file at p.
func createNoFollow(p string) (*os.File, error) {
	return os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|syscall.O_NOFOLLOW, 0o644)
}

// writeFileNoFollow writes b to the file at p.
func writeFileNoFollow(p string, b []byte) error {
	f, err := createNoFollow(p)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// openNoFollow opens the regular file at p for reading.
func openNoFollow(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s is not a regular file", p)
		}
		return nil, err
	}
	return f, nil
}

// readFileNoFollow reads the regular file at p.
func readFileNoFollow(p string) ([]byte, error) {
	f, err := openNoFollow(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
