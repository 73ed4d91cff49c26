package kfpir

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mlpipe/mlpipe/internal/diag"
	"github.com/mlpipe/mlpipe/internal/yamlnode"
)

// ReadSource reads a pipeline, component or IR file: a regular file of at
// most yamlnode.MaxBytes (a device, a FIFO or /dev/zero named by a hostile
// file must not hang mlpipe).
//
// Every error is the user's input (exit code 2): a missing, unreadable or
// oversize file, or a directory where a file was expected.
func ReadSource(path string) ([]byte, error) {
	bad := func(format string, args ...any) error {
		return diag.Diagnostics{{File: path, Msg: fmt.Sprintf(format, args...)}}
	}
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, bad("cannot open: %v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, bad("cannot stat: %v", err)
	}
	if st.IsDir() {
		return nil, bad("is a directory, not a file")
	}
	if !st.Mode().IsRegular() {
		return nil, bad("is not a regular file")
	}
	if st.Size() > yamlnode.MaxBytes {
		return nil, bad("is %d bytes, larger than the %d-byte limit", st.Size(), yamlnode.MaxBytes)
	}
	b, err := io.ReadAll(io.LimitReader(f, yamlnode.MaxBytes+1))
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, bad("cannot read: %v", err)
	}
	if len(b) > yamlnode.MaxBytes {
		return nil, bad("is larger than the %d-byte limit", yamlnode.MaxBytes)
	}
	return b, nil
}
