package compiler

// Reading users' files, and small helpers over their YAML nodes.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mlpipe/mlpipe/internal/yamlnode"
)

func jsonString(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}

// --- small helpers for reading yamlnode trees ---

func expectMap(d *diags, n *yamlnode.Node, what string) bool {
	if n == nil {
		return false
	}
	if n.Kind != yamlnode.Map {
		d.node(n, "%s must be a mapping, not a %s", what, n.Kind)
		return false
	}
	return true
}

func checkKeys(d *diags, n *yamlnode.Node, what string, allowed ...string) {
	for _, k := range n.Keys {
		ok := false
		for _, a := range allowed {
			if k.Str == a {
				ok = true
				break
			}
		}
		if !ok {
			d.node(k, "unknown key %q in %s (allowed: %s)", k.Str, what, strings.Join(allowed, ", "))
		}
	}
}

func str(d *diags, n *yamlnode.Node, what string) string {
	if n == nil || n.Kind == yamlnode.Null {
		return ""
	}
	if n.Kind == yamlnode.Map || n.Kind == yamlnode.Seq {
		d.node(n, "%s must be a string, not a %s", what, n.Kind)
		return ""
	}
	return n.Text()
}

// ReadSource reads a pipeline, component or IR file: a regular file of at
// most yamlnode.MaxBytes (a device, a FIFO or /dev/zero named by a hostile
// file must not hang mlpipe).
//
// Every error is the user's input (exit code 2): a missing, unreadable or
// oversize file, or a directory where a file was expected.
func ReadSource(path string) ([]byte, error) {
	bad := func(format string, args ...any) error {
		return Diagnostics{{File: path, Msg: fmt.Sprintf(format, args...)}}
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
