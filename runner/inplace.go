package runner

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// With a local store, a step of the process executor reads its input
// artifacts where they are stored; nothing stops it from changing them
// (the Docker executor mounts them read-only). A consumer that changed its
// input would hand the next consumer other content than the producer's,
// under the producer's digest. Before each consumer, the runner compares a
// fingerprint of every local input (size, modification and change times,
// inode of each file: a stat walk, no reading) with the one taken the first
// time it was used; when they differ it re-digests the content, and fails
// the consumer clearly if it is not what was recorded.

// inplaceGuard keeps the fingerprints of the local artifacts of a run.
type inplaceGuard struct {
	mu  sync.Mutex
	fps map[string][32]byte // local path → fingerprint
}

// fingerprint is a digest of the metadata of the file or tree at p.
func fingerprint(p string) ([32]byte, error) {
	h := sha256.New()
	var buf [8]byte
	put := func(v int64) {
		binary.LittleEndian.PutUint64(buf[:], uint64(v))
		h.Write(buf[:])
	}
	err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h.Write([]byte(path))
		h.Write([]byte{0})
		put(int64(info.Mode()))
		put(info.Size())
		put(info.ModTime().UnixNano())
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			put(int64(st.Ino))
			put(st.Ctim.Sec)
			put(st.Ctim.Nsec)
		}
		return nil
	})
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out, err
}

// checkLocalInputs checks every local input of a task of the process
// executor (checkLocalInput), before its cache lookup.
func (c *containerTask) checkLocalInputs(ctx context.Context) error {
	r := c.r
	if r.opts.Executor.Properties().Isolated {
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(c.in.artifacts)) {
		for _, a := range c.in.artifacts[name] {
			if r.opts.Store.Remote() && isRemoteURI(a.URI) {
				continue
			}
			if err := r.checkLocalInput(ctx, name, localPathOf(a.URI), a.Digest); err != nil {
				return err
			}
		}
	}
	return nil
}

// check verifies a local input before a consumer uses it. The first time a
// path is seen its fingerprint is taken; later, a different fingerprint
// makes it re-digest the content against want (the recorded digest).
func (r *run) checkLocalInput(ctx context.Context, name, local, want string) error {
	if want == "" {
		return nil
	}
	fp, err := fingerprint(local)
	if err != nil {
		return fmt.Errorf("input %s at %s: %w", name, local, err)
	}
	g := &r.inplace
	g.mu.Lock()
	prev, seen := g.fps[local]
	if !seen {
		if g.fps == nil {
			g.fps = map[string][32]byte{}
		}
		g.fps[local] = fp
	}
	g.mu.Unlock()
	if seen && prev == fp {
		return nil
	}
	if !seen && strings.HasPrefix(local, strings.TrimPrefix(r.runRoot, "file://")+string(filepath.Separator)) {
		return nil // written by this run: digested as it was collected
	}
	// Changed since it was first seen, or first seen now and made by an
	// earlier run (a cache hit, a resume): its content is digested.
	info, err := r.opts.Store.Digest(ctx, local)
	if err != nil {
		return fmt.Errorf("input %s at %s: %w", name, local, err)
	}
	if info.Digest != want {
		return fmt.Errorf("input %s at %s was changed after it was recorded (digest %s, now %s): a step that read it changed it in place (the process executor cannot make inputs read-only; the Docker executor does): %w",
			name, local, want, info.Digest, ErrDigestMismatch)
	}
	// Touched, same content: the new metadata is the reference now.
	g.mu.Lock()
	g.fps[local] = fp
	g.mu.Unlock()
	return nil
}
