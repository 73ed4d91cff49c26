package runner

import (
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/mlpipe/mlpipe/internal/safefile"
	"github.com/mlpipe/mlpipe/kfpir"
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
func openNoFollow(p string) (*os.File, error) { return safefile.OpenRegular(p) }

// readFileNoFollow reads the regular file at p, refusing one larger than
// max bytes (a step's output is untrusted: it must not make mlpipe
// allocate what it likes).
func readFileNoFollow(p string, max int64) ([]byte, error) {
	f, err := openNoFollow(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		st, _ := f.Stat()
		size := int64(len(b))
		if st != nil {
			size = st.Size()
		}
		return nil, &TooLargeError{Path: p, Size: size, Limit: max}
	}
	return b, nil
}

// TooLargeError is a step's file over its size limit.
type TooLargeError struct {
	Path        string
	Size, Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is %s, over the limit of %s", e.Path, kfpir.FormatBytes(float64(e.Size)), kfpir.FormatBytes(float64(e.Limit)))
}

// tailNoFollow returns at most the last n bytes of the regular file at p.
func tailNoFollow(p string, n int64) ([]byte, error) {
	f, err := openNoFollow(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(st.Size()-n, 0)
	return io.ReadAll(io.NewSectionReader(f, off, n))
}
