package docker

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// contextFile is one entry of a build context.
type contextFile struct {
	Rel  string      // slash-separated path relative to the context
	Mode fs.FileMode // type and permission bits
	Link string      // symlink target
}

// contextFiles lists the entries of a build context directory that
// .dockerignore does not exclude, sorted by path. As with the Docker CLI,
// the Dockerfile and .dockerignore are always sent.
func contextFiles(dir string) ([]contextFile, error) {
	if _, err := os.Stat(filepath.Join(dir, "Dockerfile")); err != nil {
		return nil, fmt.Errorf("build context %s has no Dockerfile: %w", dir, err)
	}
	var excludes []string
	if f, err := os.Open(filepath.Join(dir, ".dockerignore")); err == nil {
		excludes, err = ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, ".dockerignore"), err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	pm, err := patternmatcher.New(excludes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ".dockerignore"), err)
	}
	var out []contextFile
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		always := rel == "Dockerfile" || rel == ".dockerignore"
		skip := false
		if !always {
			if skip, err = pm.MatchesOrParentMatches(rel); err != nil {
				return err
			}
		}
		if skip {
			if d.IsDir() && !reincluded(pm, rel) {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f := contextFile{Rel: rel, Mode: info.Mode()}
		switch {
		case info.Mode().IsRegular(), info.IsDir():
		case info.Mode()&fs.ModeSymlink != 0:
			if f.Link, err = os.Readlink(p); err != nil {
				return err
			}
		default:
			return nil // sockets, devices and pipes are not sent
		}
		out = append(out, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rel < out[j].Rel })
	return out, nil
}

// reincluded reports whether an exception pattern (!dir/file) may bring
// back something under an excluded directory.
func reincluded(pm *patternmatcher.PatternMatcher, dir string) bool {
	if !pm.Exclusions() {
		return false
	}
	for _, p := range pm.Patterns() {
		if p.Exclusion() && strings.HasPrefix(p.String()+"/", dir+"/") {
			return true
		}
	}
	return false
}

// contextHash is the content hash of a build context: every entry's path,
// type, permissions and content (or link target), the build arguments and
// the base images (name=ID).
func contextHash(dir string, files []contextFile, args map[string]*string, bases []string) (string, error) {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%o\x00%s\x00", f.Rel, f.Mode, f.Link)
		if f.Mode.IsRegular() {
			r, err := os.Open(filepath.Join(dir, filepath.FromSlash(f.Rel)))
			if err != nil {
				return "", err
			}
			_, err = io.Copy(h, r)
			r.Close()
			if err != nil {
				return "", err
			}
		}
		h.Write([]byte{0})
	}
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := "\x01" // no value: the Dockerfile's default
		if args[k] != nil {
			v = *args[k]
		}
		fmt.Fprintf(h, "arg\x00%s\x00%s\x00", k, v)
	}
	for _, b := range bases {
		fmt.Fprintf(h, "base\x00%s\x00", b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// contextTime is the modification time of every file sent: the same
// content makes the same layers whatever the checkout's timestamps.
var contextTime = time.Unix(0, 0)

// writeContext writes the listed entries of dir as a tar stream, owned by
// root as the Docker CLI sends them.
func writeContext(w io.Writer, dir string, files []contextFile) error {
	tw := tar.NewWriter(w)
	for _, f := range files {
		hdr := &tar.Header{Name: f.Rel, Mode: int64(f.Mode.Perm()), ModTime: contextTime, Format: tar.FormatPAX}
		p := filepath.Join(dir, filepath.FromSlash(f.Rel))
		switch {
		case f.Mode.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, f.Rel+"/"
		case f.Mode&fs.ModeSymlink != 0:
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, f.Link
		default:
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Typeflag != tar.TypeReg {
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			continue
		}
		if err := writeFile(tw, hdr, p); err != nil {
			return err
		}
	}
	return tw.Close()
}

func writeFile(tw *tar.Writer, hdr *tar.Header, path string) error {
	r, err := os.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	st, err := r.Stat()
	if err != nil {
		return err
	}
	hdr.Size = st.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, r, hdr.Size); err != nil {
		return fmt.Errorf("%s changed while it was sent: %w", path, err)
	}
	return nil
}
