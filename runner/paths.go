package runner

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/mlpipe/mlpipe/kfpir"
)

// The IR loader refuses names outside kfpir.SafeName, so every name that
// reaches the runner is one file-name component. The functions here are the
// second line of defence: each path the runner builds from a name is checked
// again, so that an IR that bypassed the loader (a Go caller, a future
// loader bug) still cannot name a path outside the run's directories.

// taskRelDir turns a task path ("sub/train[2]") into the task's directory
// relative to the run's directory ("sub/train.2"). Every element must be a
// safe name with optional loop indexes; since safe names hold no '.', the
// mapping is one-to-one and no two tasks of a run share a directory.
func taskRelDir(path string) (string, error) {
	parts := strings.Split(path, "/")
	out := make([]string, len(parts))
	for i, p := range parts {
		base, idx := p, ""
		if j := strings.IndexByte(p, '['); j >= 0 {
			base, idx = p[:j], p[j:]
		}
		if !kfpir.SafeName(base) {
			return "", fmt.Errorf("task path %q: %q is not a safe name", path, base)
		}
		var b strings.Builder
		b.WriteString(base)
		for idx != "" {
			end := strings.IndexByte(idx, ']')
			if idx[0] != '[' || end < 2 || !allDigits(idx[1:end]) {
				return "", fmt.Errorf("task path %q: bad loop index in %q", path, p)
			}
			b.WriteByte('.')
			b.WriteString(idx[1:end])
			idx = idx[end+1:]
		}
		out[i] = b.String()
	}
	return strings.Join(out, "/"), nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// joinUnder joins rel (slash-separated) onto root and returns an error unless
// the result lies strictly below root.
func joinUnder(root, rel string) (string, error) {
	p := filepath.Join(root, filepath.FromSlash(rel))
	r, err := filepath.Rel(root, p)
	if err != nil || r == "." || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) || filepath.IsAbs(r) {
		return "", fmt.Errorf("path %q escapes %s", rel, root)
	}
	return p, nil
}

// namedPath returns root/prefix+name (plus more elements), refusing a name
// outside kfpir.SafeName.
func namedPath(root, prefix, name string, more ...string) (string, error) {
	if !kfpir.SafeName(name) {
		return "", fmt.Errorf("%q is not a safe input or output name", name)
	}
	rel := prefix + name
	for _, m := range more {
		rel += "/" + m
	}
	return joinUnder(root, rel)
}
