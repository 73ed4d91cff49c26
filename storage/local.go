package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/mlpipe/mlpipe/contract"
)

// ErrNotFound is returned when an artifact does not exist. It is the
// runner's ErrArtifactNotFound, so that the runner can tell a missing
// artifact from a store that does not answer.
var ErrNotFound = contract.ErrArtifactNotFound

// ErrDigestMismatch is returned when an artifact's content does not match
// its recorded digest.
var ErrDigestMismatch = contract.ErrDigestMismatch

// Local is the default artifact store: a directory on this machine.
// Artifact URIs are absolute paths under it, which components use in place
// (the KFP local runner's convention).
type Local struct {
	root string
}

var _ Store = (*Local)(nil)

// NewLocal opens (creating if needed) a local store rooted at dir.
func NewLocal(dir string) (*Local, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("create artifact store: %w", err)
	}
	return &Local{root: abs}, nil
}

// Root is the store's directory.
func (l *Local) Root() string { return l.root }

// RunRoot implements contract.ArtifactStore.
func (l *Local) RunRoot(pipeline, runID string) string {
	return filepath.Join(l.root, pipeline, runID)
}

// LocalRootOf is the inverse of Local.RunRoot: the root of the local store
// that a run's root (<root>/<pipeline>/<run>, with or without file://)
// belongs to.
func LocalRootOf(runRoot string) string {
	return filepath.Dir(filepath.Dir(filepath.Clean(strings.TrimPrefix(runRoot, "file://"))))
}

// Remote implements contract.ArtifactStore: artifacts are used in place.
func (l *Local) Remote() bool { return false }

func (l *Local) path(uri string) (string, error) {
	p := strings.TrimPrefix(uri, "file://")
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%s: the local store needs an absolute path", uri)
	}
	return filepath.Clean(p), nil
}

// Put implements contract.ArtifactStore: the file or directory at localPath
// becomes the artifact at uri (copied there when it is elsewhere, into a
// temporary name that is renamed into place only once complete), and its
// digest is computed.
func (l *Local) Put(ctx context.Context, uri, localPath string) (contract.ArtifactInfo, error) {
	dst, err := l.path(uri)
	if err != nil {
		return contract.ArtifactInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return contract.ArtifactInfo{}, fmt.Errorf("put %s: %w", uri, err)
	}
	if filepath.Clean(localPath) == dst {
		return digestPath(ctx, dst)
	}
	return l.store(ctx, "put", uri, dst, localPath, true)
}

// Create is Put for a URI where nothing may be replaced: it fails with an
// error matching contract.ErrArtifactExists when something is there at the
// moment the copy would take its place, even if another process stores
// there at the same time (a hard link for a file, a rename that may not
// replace for a directory).
func (l *Local) Create(ctx context.Context, uri, localPath string) (contract.ArtifactInfo, error) {
	dst, err := l.path(uri)
	if err != nil {
		return contract.ArtifactInfo{}, err
	}
	return l.store(ctx, "create", uri, dst, localPath, false)
}

// store copies src to a temporary name beside dst, through an os.Root of
// the store, and puts it in dst's place once complete: over what is there
// when replace is set, else only where nothing is. It returns the digest
// of what it stored; if that fails (canceled after the copy took its
// place), it removes it again, so that a failed store leaves nothing that
// looks complete.
func (l *Local) store(ctx context.Context, op, uri, dst, src string, replace bool) (contract.ArtifactInfo, error) {
	fail := func(err error) (contract.ArtifactInfo, error) {
		return contract.ArtifactInfo{}, fmt.Errorf("%s %s: %w", op, uri, err)
	}
	root, rel, err := l.openRoot(dst)
	if err != nil {
		return fail(err)
	}
	defer root.Close()
	if !replace {
		if _, err := root.Lstat(rel); err == nil {
			return fail(contract.ErrArtifactExists)
		}
	}
	if err := root.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
		return fail(err)
	}
	tmp := tempName(rel)
	defer root.RemoveAll(tmp) // nothing left once it took dst's place
	if err := copyTree(ctx, src, root, tmp); err != nil {
		return fail(err)
	}
	if err := placeAt(root, tmp, rel, replace); err != nil {
		return fail(err)
	}
	info, err := digestPath(ctx, dst)
	if err != nil {
		root.RemoveAll(rel)
		return fail(err)
	}
	return info, nil
}

// placeAt puts the copy at tmp in rel's place: replacing what is there, or
// failing with contract.ErrArtifactExists if anything is.
func placeAt(root *os.Root, tmp, rel string, replace bool) error {
	if replace {
		if err := root.RemoveAll(rel); err != nil {
			return err
		}
		return root.Rename(tmp, rel)
	}
	st, err := root.Lstat(tmp)
	if err != nil {
		return err
	}
	if st.IsDir() {
		// os.Root's Rename refuses an existing directory, and the kernel
		// refuses to rename over a non-empty one (two empty directories
		// racing may replace each other, which changes nothing).
		err = root.Rename(tmp, rel)
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.ENOTDIR) {
			err = fs.ErrExist
		}
	} else {
		err = root.Link(tmp, rel) // tmp itself goes with the deferred removal
	}
	if errors.Is(err, fs.ErrExist) {
		return contract.ErrArtifactExists
	}
	return err
}

// openRoot opens the store's directory as an os.Root, through which every
// write and removal stays inside it even if a step running meanwhile swaps
// a directory of its own for a symbolic link, and returns p relative to it.
func (l *Local) openRoot(p string) (*os.Root, string, error) {
	rel, err := filepath.Rel(l.root, p)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, "", fmt.Errorf("%s is not inside the store %s", p, l.root)
	}
	r, err := os.OpenRoot(l.root)
	return r, rel, err
}

// dirOps is where copies are written: the host's file system, or an
// os.Root that keeps them inside the store.
type dirOps interface {
	MkdirAll(name string, perm fs.FileMode) error
	OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error)
	Rename(oldname, newname string) error
	Remove(name string) error
	RemoveAll(name string) error
}

// hostOps is dirOps on the host's file system.
type hostOps struct{}

func (hostOps) MkdirAll(name string, perm fs.FileMode) error { return os.MkdirAll(name, perm) }
func (hostOps) OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	return os.OpenFile(name, flag, perm)
}
func (hostOps) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }
func (hostOps) Remove(name string) error             { return os.Remove(name) }
func (hostOps) RemoveAll(name string) error          { return os.RemoveAll(name) }

// tempSuffix marks files and directories that are still being written.
const tempSuffix = ".mlpipe-tmp"

func tempName(p string) string {
	return fmt.Sprintf("%s.%s%s", p, randomHex(6), tempSuffix)
}

func isTempName(p string) bool { return strings.HasSuffix(p, tempSuffix) }

// Digest digests the file or directory at p as the store digests its
// artifacts (the runner uses it to tell whether an artifact it would store
// is there already).
func (l *Local) Digest(ctx context.Context, p string) (contract.ArtifactInfo, error) {
	return digestPath(ctx, p)
}

// digestPath is the digest, size and kind of the file or tree at p.
func digestPath(ctx context.Context, p string) (contract.ArtifactInfo, error) {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return contract.ArtifactInfo{}, fmt.Errorf("%s: %w", p, ErrNotFound)
		}
		return contract.ArtifactInfo{}, err
	}
	if !st.IsDir() {
		d, n, err := fileDigest(ctx, p)
		return contract.ArtifactInfo{Digest: d, Size: n}, err
	}
	entries, err := scanDir(ctx, p)
	if err != nil {
		return contract.ArtifactInfo{}, err
	}
	var size int64
	for _, e := range entries {
		size += e.Size
	}
	return contract.ArtifactInfo{Digest: TreeDigest(entries), Size: size, Dir: true}, nil
}

// Get implements contract.ArtifactStore: it copies the artifact to localPath
// when that is another place, and verifies the digest when want is set. A
// copy that fails verification is removed.
func (l *Local) Get(ctx context.Context, uri, localPath, want string) (contract.ArtifactInfo, error) {
	src, err := l.path(uri)
	if err != nil {
		return contract.ArtifactInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return contract.ArtifactInfo{}, fmt.Errorf("get %s: %w", uri, err)
	}
	if localPath == "" || filepath.Clean(localPath) == src {
		if want == "" {
			return l.Stat(ctx, uri)
		}
		return l.verify(ctx, uri, src, want)
	}
	if _, err := os.Stat(src); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return contract.ArtifactInfo{}, fmt.Errorf("get %s: %w", uri, ErrNotFound)
		}
		return contract.ArtifactInfo{}, err
	}
	if err := os.MkdirAll(filepath.Dir(localPath), 0o755); err != nil {
		return contract.ArtifactInfo{}, err
	}
	tmp := tempName(localPath)
	if err := copyTree(ctx, src, hostOps{}, tmp); err != nil {
		os.RemoveAll(tmp)
		if errors.Is(err, fs.ErrNotExist) {
			return contract.ArtifactInfo{}, fmt.Errorf("get %s: %w", uri, ErrNotFound)
		}
		return contract.ArtifactInfo{}, fmt.Errorf("get %s: %w", uri, err)
	}
	info, err := statPath(uri, tmp)
	if want != "" {
		info, err = l.verify(ctx, uri, tmp, want)
	}
	if err == nil {
		if err = os.RemoveAll(localPath); err == nil {
			err = os.Rename(tmp, localPath)
		}
	}
	if err != nil {
		os.RemoveAll(tmp)
		return contract.ArtifactInfo{}, err
	}
	return info, nil
}

// verify digests the artifact at p and compares it with want.
func (l *Local) verify(ctx context.Context, uri, p, want string) (contract.ArtifactInfo, error) {
	info, err := digestPath(ctx, p)
	if err != nil {
		return info, err
	}
	if info.Digest != want {
		return info, fmt.Errorf("get %s: %w (recorded %s, found %s)", uri, ErrDigestMismatch, want, info.Digest)
	}
	return info, nil
}

// Stat implements contract.ArtifactStore. It reports size and kind without
// reading the content (Digest is empty).
func (l *Local) Stat(_ context.Context, uri string) (contract.ArtifactInfo, error) {
	p, err := l.path(uri)
	if err != nil {
		return contract.ArtifactInfo{}, err
	}
	return statPath(uri, p)
}

// statPath reports size and kind of the file or tree at p.
func statPath(uri, p string) (contract.ArtifactInfo, error) {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return contract.ArtifactInfo{}, fmt.Errorf("%s: %w", uri, ErrNotFound)
		}
		return contract.ArtifactInfo{}, err
	}
	if !st.IsDir() {
		return contract.ArtifactInfo{Size: st.Size()}, nil
	}
	var size int64
	err = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			size += fi.Size()
		}
		return nil
	})
	return contract.ArtifactInfo{Size: size, Dir: true}, err
}

// List implements Store: every regular file at or under prefix, except
// copies still being written.
func (l *Local) List(ctx context.Context, prefix string, fn func(Object) error) error {
	p, err := l.path(prefix)
	if err != nil {
		return err
	}
	err = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && q == p {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if isTempName(q) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return fn(Object{URI: q, Size: fi.Size()})
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	return nil
}

// Exists implements contract.ArtifactStore: a file or directory at uri.
func (l *Local) Exists(_ context.Context, uri string) (bool, error) {
	p, err := l.path(uri)
	if err != nil {
		return false, err
	}
	_, err = os.Lstat(p)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, err
}

// Delete implements contract.ArtifactStore.
func (l *Local) Delete(_ context.Context, prefix string) error {
	p, err := l.path(prefix)
	if err != nil {
		return err
	}
	if p == l.root || !strings.HasPrefix(p, l.root+string(filepath.Separator)) {
		return fmt.Errorf("refusing to delete %s: not inside the store %s", p, l.root)
	}
	root, rel, err := l.openRoot(p)
	if err != nil {
		return err
	}
	defer root.Close()
	return root.RemoveAll(rel)
}

// copyTree copies a file or a directory tree to dst through ops. The files
// of a directory are opened through it (os.Root): a link a step put in
// place of a file or a subdirectory while it is copied cannot lead
// outside.
func copyTree(ctx context.Context, src string, ops dirOps, dst string) error {
	st, err := os.Lstat(src)
	if err == nil && st.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%s: symbolic links are not stored in artifacts", src)
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return copyFile(ctx, func() (*os.File, error) { return openRegular(src) }, ops, dst, st.Mode())
	}
	root, err := os.OpenRoot(src)
	if err != nil {
		return err
	}
	defer root.Close()
	return fs.WalkDir(root.FS(), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		target := filepath.Join(dst, filepath.FromSlash(rel))
		if d.IsDir() {
			return ops.MkdirAll(target, 0o755)
		}
		p := filepath.Join(src, filepath.FromSlash(rel))
		if !d.Type().IsRegular() {
			if d.Type()&fs.ModeSymlink != 0 {
				return fmt.Errorf("%s: symbolic links are not stored in artifacts", p)
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return copyFile(ctx, func() (*os.File, error) { return openRegularIn(root, filepath.FromSlash(rel)) }, ops, target, fi.Mode())
	})
}

func copyFile(ctx context.Context, open opener, ops dirOps, dst string, mode fs.FileMode) error {
	in, err := open()
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + tempSuffix
	out, err := ops.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode.Perm()|0o200)
	if err != nil {
		return err
	}
	buf := getBuffer()
	defer putBuffer(buf)
	if _, err := io.CopyBuffer(out, ctxReader{ctx, in}, *buf); err != nil {
		out.Close()
		ops.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		ops.Remove(tmp)
		return err
	}
	return ops.Rename(tmp, dst)
}
