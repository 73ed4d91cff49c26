package platform

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrNotFound marks a secret, config map or key that is not in the local
// store.
var ErrNotFound = errors.New("not found")

// maxValueSize bounds one key file and one env file (Kubernetes bounds a
// whole secret at 1 MiB).
const maxValueSize = 1 << 20

// maxVolumeEntries bounds the files of a secret directory mounted as a
// volume (each is checked for escaping symlinks).
const maxVolumeEntries = 10000

// store is the local stand-in for the secrets or the config maps of a
// namespace: <dir>/<name>/<key> files or <dir>/<name>.env files.
type store struct {
	kind   string // "secret" or "config map", for messages
	dir    string
	secret bool // secrets warn about loose permissions and are written 0600
	warn   func(string)
}

// source is one secret or config map found in a store.
type source struct {
	name    string
	dirPath string            // <dir>/<name>, as named to people
	envPath string            // <dir>/<name>.env
	realDir string            // the directory form, symlinks resolved; "" if absent
	env     map[string]string // the env form's values; nil if absent
}

// safeName reports why name cannot be a secret, config map or key name:
// names come from untrusted IR and become file names under the store.
func safeName(name string) error {
	switch {
	case name == "":
		return errors.New("empty")
	case len(name) > 253:
		return errors.New("longer than 253 characters")
	case name[0] == '.':
		return errors.New("starts with '.'")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return errors.New("only letters, digits, '.', '_' and '-' are allowed")
		}
	}
	return nil
}

// within reports whether the resolved path p lies inside the resolved
// directory root (and is not root itself).
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// open finds the secret or config map name. It returns an error wrapping
// ErrNotFound when neither form exists.
func (s *store) open(name string) (*source, error) {
	if err := safeName(name); err != nil {
		return nil, fmt.Errorf("%s name %q is not allowed: %v", s.kind, name, err)
	}
	if s.dir == "" {
		return nil, fmt.Errorf("%s %q: no local %s directory is configured: %w", s.kind, name, s.kind, ErrNotFound)
	}
	src := &source{name: name, dirPath: filepath.Join(s.dir, name), envPath: filepath.Join(s.dir, name+".env")}
	root, err := filepath.EvalSymlinks(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, s.notFound(src)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", s.kind, name, err)
	}
	if real, ok, err := s.resolve(root, src.dirPath); err != nil {
		return nil, err
	} else if ok {
		fi, err := os.Stat(real)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", s.kind, name, err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("%s %q: %s is not a directory", s.kind, name, src.dirPath)
		}
		src.realDir = real
		s.checkMode(src, src.dirPath, fi)
	}
	if real, ok, err := s.resolve(root, src.envPath); err != nil {
		return nil, err
	} else if ok {
		b, fi, err := readBounded(real)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", s.kind, name, err)
		}
		s.checkMode(src, src.envPath, fi)
		if src.env, err = parseEnvFile(b); err != nil {
			return nil, fmt.Errorf("%s %q: %s: %w", s.kind, name, src.envPath, err)
		}
	}
	if src.realDir == "" && src.env == nil {
		return nil, s.notFound(src)
	}
	return src, nil
}

func (s *store) notFound(src *source) error {
	return fmt.Errorf("%s %q: looked for the directory %s and the file %s: %w", s.kind, src.name, src.dirPath, src.envPath, ErrNotFound)
}

// resolve resolves the symlinks of p, which must stay inside root. ok is
// false when p does not exist.
func (s *store) resolve(root, p string) (real string, ok bool, err error) {
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	} else if err != nil {
		return "", false, err
	}
	real, err = filepath.EvalSymlinks(p)
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", p, err)
	}
	if !within(root, real) {
		return "", false, fmt.Errorf("%s is a symlink that points outside %s; refusing to use it", p, root)
	}
	return real, true, nil
}

// checkMode warns about a secret readable by group or others.
func (s *store) checkMode(src *source, p string, fi fs.FileInfo) {
	if !s.secret || s.warn == nil || fi.Mode().Perm()&0o077 == 0 {
		return
	}
	want := "600"
	if fi.IsDir() {
		want = "700"
	}
	s.warn(fmt.Sprintf("%s %q: %s is readable by group or others (mode %o); run chmod %s %s",
		s.kind, src.name, p, fi.Mode().Perm(), want, p))
}

// value returns the value of key and where it was found: the directory
// form if it has the key, else the env form. ok is false when neither has
// it.
func (s *store) value(src *source, key string) (v, from string, ok bool, err error) {
	if err := safeName(key); err != nil {
		return "", "", false, fmt.Errorf("%s %q: key %q is not allowed: %v", s.kind, src.name, key, err)
	}
	if src.realDir != "" {
		real, ok, err := s.resolve(src.realDir, filepath.Join(src.realDir, key))
		if err != nil {
			return "", "", false, fmt.Errorf("%s %q, key %q: %w", s.kind, src.name, key, err)
		}
		if ok {
			b, fi, err := readBounded(real)
			if err != nil {
				return "", "", false, fmt.Errorf("%s %q, key %q: %w", s.kind, src.name, key, err)
			}
			s.checkMode(src, filepath.Join(src.dirPath, key), fi)
			return string(b), src.dirPath, true, nil
		}
	}
	if v, ok := src.env[key]; ok {
		return v, src.envPath, true, nil
	}
	return "", "", false, nil
}

// volumeDir returns the host directory to mount for src: the directory form
// itself after checking that no symlink in it leads outside, or, for the
// env form, a directory under scratch with one file per key.
func (s *store) volumeDir(src *source, scratch, prefix string) (string, error) {
	if src.realDir != "" {
		return src.realDir, s.checkTree(src)
	}
	if scratch == "" {
		return "", fmt.Errorf("%s %q: no scratch directory to write its keys to", s.kind, src.name)
	}
	dir := filepath.Join(scratch, prefix+src.name)
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	mode := os.FileMode(0o644)
	if s.secret {
		mode = 0o600
	}
	for _, k := range sortedKeys(src.env) {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(src.env[k]), mode); err != nil {
			return "", fmt.Errorf("%s %q: write key %q: %w", s.kind, src.name, k, err)
		}
	}
	return dir, nil
}

// checkTree refuses a directory form with a symlink that leads outside it.
func (s *store) checkTree(src *source) error {
	n := 0
	return filepath.WalkDir(src.realDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n++; n > maxVolumeEntries {
			return fmt.Errorf("%s %q: more than %d files", s.kind, src.name, maxVolumeEntries)
		}
		if e.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return fmt.Errorf("%s %q: %w", s.kind, src.name, err)
		}
		if !within(src.realDir, real) {
			return fmt.Errorf("%s %q: %s is a symlink that points outside %s; refusing to mount it", s.kind, src.name, p, src.dirPath)
		}
		return nil
	})
}

// readBounded reads a regular file of at most maxValueSize bytes.
func readBounded(p string) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file", p)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxValueSize+1))
	if err != nil {
		return nil, nil, err
	}
	if len(b) > maxValueSize {
		return nil, nil, fmt.Errorf("%s is larger than %d bytes", p, maxValueSize)
	}
	return b, fi, nil
}

// parseEnvFile reads KEY=VALUE lines. Blank lines and lines starting with
// '#' are skipped, a leading "export " is allowed, and a value wrapped in
// matching single or double quotes loses them; nothing else is interpreted
// (no escapes, no variable expansion). Errors name the line, never a value.
func parseEnvFile(b []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), maxValueSize+1)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSuffix(sc.Text(), "\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		trimmed = strings.TrimPrefix(trimmed, "export ")
		k, v, ok := strings.Cut(trimmed, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: want KEY=VALUE", n)
		}
		k = strings.TrimSpace(k)
		if err := safeName(k); err != nil {
			// The key is not shown: a malformed line may hold a value.
			return nil, fmt.Errorf("line %d: the key is not allowed: %v", n, err)
		}
		v = strings.TrimLeft(v, " \t")
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
