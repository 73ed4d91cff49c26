package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/mlpipe/mlpipe/contract"
)

// A directory artifact at key is stored as one object per file under
// key/ (the layout a KFP cluster writes and reads) plus a manifest object
// beside it, at <dir of key>/.mlpipe-manifest.<base of key>.json, which
// lists the files with their sizes and digests and the tree digest. The
// manifest is written last and removed first, so a directory whose upload
// was interrupted has none and does not look complete. Being a sibling
// whose name does not start with the artifact's, it stays out of the
// artifact's prefix, so KFP's launcher, which downloads everything under
// that prefix, never sees it.
const manifestPrefix = ".mlpipe-manifest."

// manifestKey is the key of the manifest of a directory artifact at key.
func manifestKey(key string) string {
	dir, base := path.Split(key)
	return dir + manifestPrefix + base + ".json"
}

// isManifestKey reports whether key names a manifest.
func isManifestKey(key string) bool {
	base := path.Base(key)
	return strings.HasPrefix(base, manifestPrefix) && strings.HasSuffix(base, ".json")
}

// manifest describes a directory artifact.
type manifest struct {
	Version int             `json:"version"`
	Digest  string          `json:"digest"` // TreeDigest of Entries
	Size    int64           `json:"size"`
	Entries []manifestEntry `json:"entries"`
}

type manifestEntry struct {
	Path   string `json:"path"` // slash-separated, relative to the directory
	Size   int64  `json:"size"`
	Digest string `json:"digest"`
}

// putDir uploads a directory artifact: the old manifest goes first, then
// every file (in parallel, each hashed by the worker that sends it, so that
// hashing one file overlaps with sending others), then objects left from
// an earlier version, and the new manifest last. On failure the files sent
// are removed again.
func (m *MinIO) putDir(ctx context.Context, uri, bucket, key, localPath string) (contract.ArtifactInfo, error) {
	entries, err := listDir(ctx, localPath)
	if err != nil {
		return contract.ArtifactInfo{}, fmt.Errorf("put %s: %w", uri, err)
	}
	want := make(map[string]bool, len(entries))
	var total int64
	for _, e := range entries {
		want[key+"/"+e.Path] = true
		total += e.Size
	}
	// Whatever was here stops looking complete: the old manifest, or a
	// file artifact of the same name.
	if err := m.removeObjects(ctx, uri, bucket, []string{manifestKey(key), key}); err != nil {
		return contract.ArtifactInfo{}, err
	}
	prog := newProgress(m.opts.Progress, m.opts.ProgressMin, "put", uri, total)
	// With several files in flight, each goes in one PUT up to
	// dirSinglePutMax: the files keep the connections busy, and one PUT
	// carries the CRC computed with the sha256 as a header where parts
	// would have it computed again and sent as trailers.
	var singleMax int64
	if len(entries) >= m.opts.PartThreads {
		singleMax = dirSinglePutMax
	}
	// Files are opened through the directory (os.Root): a link a step put
	// in place of a file or a subdirectory after the listing cannot lead
	// outside it.
	root, err := os.OpenRoot(localPath)
	if err != nil {
		return contract.ArtifactInfo{}, fmt.Errorf("put %s: %w", uri, err)
	}
	defer root.Close()
	err = forEach(ctx, len(entries), m.opts.Concurrency, func(ctx context.Context, i int) error {
		e := &entries[i]
		file := filepath.Join(localPath, filepath.FromSlash(e.Path))
		open := func() (*os.File, error) { return openRegularIn(root, filepath.FromSlash(e.Path)) }
		digest, crc, size, err := fileDigestCRC(ctx, open)
		if err != nil {
			return fmt.Errorf("put %s: %w", uri, err)
		}
		e.Digest, e.Size = digest, size
		return m.retry(ctx, "put", uri+"/"+e.Path, bucket, func(ctx context.Context) error {
			return m.uploadFileOpts(ctx, bucket, key+"/"+e.Path, file, open, size, m.putOptions(digest, crc, size, singleMax, prog))
		})
	})
	man := manifest{Version: 1}
	if err == nil {
		man.Digest = TreeDigest(entries)
		for _, e := range entries {
			man.Entries = append(man.Entries, manifestEntry(e))
			man.Size += e.Size
		}
		err = m.removeStale(ctx, uri, bucket, key, want)
	}
	if err == nil {
		err = m.writeManifest(ctx, uri, bucket, key, &man)
	}
	if err != nil {
		m.cleanup(ctx, uri, bucket, key)
		return contract.ArtifactInfo{}, err
	}
	prog.finish()
	return contract.ArtifactInfo{Digest: man.Digest, Size: man.Size, Dir: true}, nil
}

// dirSinglePutMax is the largest file of a directory artifact sent in one
// PUT when the directory has enough files to upload in parallel.
const dirSinglePutMax = 512 << 20

// cleanup removes, best effort and even after cancellation, what a failed
// directory upload sent.
func (m *MinIO) cleanup(ctx context.Context, uri, bucket, key string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := m.removeTree(ctx, uri, bucket, key+"/"); err != nil {
		m.log.WarnContext(ctx, "cleaning up a failed upload", "artifact", uri, "err", err.Error())
	}
}

// removeStale deletes objects under key/ that the new version lacks.
func (m *MinIO) removeStale(ctx context.Context, uri, bucket, key string, keep map[string]bool) error {
	var stale []string
	err := m.listKeys(ctx, uri, bucket, key+"/", func(oi minio.ObjectInfo) error {
		if !keep[oi.Key] {
			stale = append(stale, oi.Key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return m.removeObjects(ctx, uri, bucket, stale)
}

func (m *MinIO) writeManifest(ctx context.Context, uri, bucket, key string, man *manifest) error {
	b, err := json.Marshal(man)
	if err != nil {
		return err
	}
	return m.retry(ctx, "put", uri, bucket, func(ctx context.Context) error {
		_, err := m.client.PutObject(ctx, bucket, manifestKey(key), bytes.NewReader(b), int64(len(b)),
			minio.PutObjectOptions{ContentType: "application/json", DisableContentSha256: true})
		return err
	})
}

// readManifest fetches the manifest of a directory artifact; ErrNotFound
// when there is none.
func (m *MinIO) readManifest(ctx context.Context, op, uri, bucket, key string) (*manifest, error) {
	var man manifest
	err := m.retry(ctx, op, uri, bucket, func(ctx context.Context) error {
		body, _, _, err := m.core.GetObject(ctx, bucket, manifestKey(key), minio.GetObjectOptions{})
		if err != nil {
			return err
		}
		defer body.Close()
		b, err := io.ReadAll(io.LimitReader(body, 64<<20))
		if err != nil {
			return err
		}
		man = manifest{}
		if err := json.Unmarshal(b, &man); err != nil {
			return fmt.Errorf("%s %s: damaged manifest: %w", op, uri, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, e := range man.Entries {
		if !filepath.IsLocal(filepath.FromSlash(e.Path)) {
			return nil, fmt.Errorf("%s %s: manifest names a path outside the directory: %q", op, uri, e.Path)
		}
	}
	return &man, nil
}

// getDir downloads a directory artifact. With a manifest, exactly its
// files are fetched and each is checked against its digest, and the tree
// against want; without one (a directory other tools wrote), every object
// under key/ is fetched and the tree is checked against want if given.
func (m *MinIO) getDir(ctx context.Context, uri, bucket, key, localPath, want string) (contract.ArtifactInfo, error) {
	man, err := m.readManifest(ctx, "get", uri, bucket, key)
	switch {
	case errors.Is(err, ErrNotFound) && !errors.Is(err, ErrBucketNotFound):
		man, err = m.listedManifest(ctx, uri, bucket, key)
		if err != nil {
			return contract.ArtifactInfo{}, err
		}
		if man == nil {
			return contract.ArtifactInfo{}, fmt.Errorf("get %s: %w", uri, ErrNotFound)
		}
	case err != nil:
		return contract.ArtifactInfo{}, err
	}
	if want != "" && man.Digest != "" && man.Digest != want {
		return contract.ArtifactInfo{}, fmt.Errorf("get %s: %w (recorded %s, manifest says %s)", uri, ErrDigestMismatch, want, man.Digest)
	}
	dst := ""
	if localPath != "" {
		if err := os.MkdirAll(filepath.Dir(localPath), 0o755); err != nil {
			return contract.ArtifactInfo{}, err
		}
		dst = tempName(localPath)
		if err := os.Mkdir(dst, 0o755); err != nil {
			return contract.ArtifactInfo{}, err
		}
		defer os.RemoveAll(dst)
	}
	prog := newProgress(m.opts.Progress, m.opts.ProgressMin, "get", uri, man.Size)
	got := make([]DirEntry, len(man.Entries))
	err = forEach(ctx, len(man.Entries), m.opts.Concurrency, func(ctx context.Context, i int) error {
		e := man.Entries[i]
		file := ""
		if dst != "" {
			file = filepath.Join(dst, filepath.FromSlash(e.Path))
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				return err
			}
		}
		return m.retry(ctx, "get", uri+"/"+e.Path, bucket, func(ctx context.Context) error {
			info, err := m.download(ctx, bucket, key+"/"+e.Path, file, e.Digest, func(int64) *progressTracker { return prog })
			got[i] = DirEntry{Path: e.Path, Size: info.Size, Digest: info.Digest}
			return err
		})
	})
	if err != nil {
		return contract.ArtifactInfo{}, withURI("get", uri, err)
	}
	tree := TreeDigest(got)
	if man.Digest == "" {
		man.Digest = want
	}
	if man.Digest != "" && tree != man.Digest {
		return contract.ArtifactInfo{}, fmt.Errorf("get %s: %w (recorded %s, found %s)", uri, ErrDigestMismatch, man.Digest, tree)
	}
	if err := moveIntoPlace(dst, localPath); err != nil {
		return contract.ArtifactInfo{}, err
	}
	prog.finish()
	return contract.ArtifactInfo{Digest: tree, Size: man.Size, Dir: true}, nil
}

// moveIntoPlace replaces localPath with the download staged at tmp (no-op
// when tmp is empty: the download went straight to its place).
func moveIntoPlace(tmp, localPath string) error {
	if tmp == "" {
		return nil
	}
	if err := os.RemoveAll(localPath); err != nil {
		return err
	}
	return os.Rename(tmp, localPath)
}

// listedManifest builds a manifest without digests from the objects under
// key/, or returns nil when there are none.
func (m *MinIO) listedManifest(ctx context.Context, uri, bucket, key string) (*manifest, error) {
	man := &manifest{}
	err := m.listKeys(ctx, uri, bucket, key+"/", func(oi minio.ObjectInfo) error {
		rel := strings.TrimPrefix(oi.Key, key+"/")
		if isManifestKey(oi.Key) || strings.HasSuffix(oi.Key, "/") {
			return nil
		}
		if !filepath.IsLocal(filepath.FromSlash(rel)) {
			return fmt.Errorf("get %s: object %q lies outside the directory", uri, oi.Key)
		}
		man.Entries = append(man.Entries, manifestEntry{Path: rel, Size: oi.Size})
		man.Size += oi.Size
		return nil
	})
	if err != nil || len(man.Entries) == 0 {
		return nil, err
	}
	return man, nil
}

// removeDir removes a directory artifact at key, manifest first.
func (m *MinIO) removeDir(ctx context.Context, uri, bucket, key string) error {
	if err := m.removeObjects(ctx, uri, bucket, []string{manifestKey(key)}); err != nil {
		return err
	}
	return m.removeTree(ctx, uri, bucket, key+"/")
}

// removeTree removes every object whose key starts with prefix, manifests
// first.
func (m *MinIO) removeTree(ctx context.Context, uri, bucket, prefix string) error {
	var manifests, others []string
	err := m.listKeys(ctx, uri, bucket, prefix, func(oi minio.ObjectInfo) error {
		if isManifestKey(oi.Key) {
			manifests = append(manifests, oi.Key)
		} else {
			others = append(others, oi.Key)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := m.removeObjects(ctx, uri, bucket, manifests); err != nil {
		return err
	}
	return m.removeObjects(ctx, uri, bucket, others)
}

// listKeys calls fn for each object whose key starts with prefix.
func (m *MinIO) listKeys(ctx context.Context, uri, bucket, prefix string, fn func(minio.ObjectInfo) error) error {
	// A listing is retried from the start; fn must tolerate seeing keys
	// again only if it is called again, so collect first.
	var all []minio.ObjectInfo
	err := m.retry(ctx, "list", uri, bucket, func(ctx context.Context) error {
		all = all[:0]
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		for oi := range m.client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if oi.Err != nil {
				return oi.Err
			}
			all = append(all, oi)
		}
		return ctx.Err()
	})
	if err != nil {
		return err
	}
	for _, oi := range all {
		if err := fn(oi); err != nil {
			return err
		}
	}
	return nil
}

// removeObjects deletes keys (missing ones are fine) in batches.
func (m *MinIO) removeObjects(ctx context.Context, uri, bucket string, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	return m.retry(ctx, "delete", uri, bucket, func(ctx context.Context) error {
		ch := make(chan minio.ObjectInfo)
		go func() {
			defer close(ch)
			for _, k := range keys {
				select {
				case ch <- minio.ObjectInfo{Key: k}:
				case <-ctx.Done():
					return
				}
			}
		}()
		var errs []error
		for e := range m.client.RemoveObjects(ctx, bucket, ch, minio.RemoveObjectsOptions{}) {
			if e.Err != nil && minio.ToErrorResponse(e.Err).Code != "NoSuchKey" {
				errs = append(errs, fmt.Errorf("%s: %w", e.ObjectName, e.Err))
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if len(errs) > 0 {
			return errs[0]
		}
		return nil
	})
}

// List implements Store: the file artifact at prefix, if any, and every
// object under prefix/ except manifests.
func (m *MinIO) List(ctx context.Context, prefix string, fn func(Object) error) error {
	scheme, bucket, key, err := ParseObjectURI(prefix)
	if err != nil {
		return err
	}
	base := scheme + "://" + bucket + "/"
	if key != "" {
		oi, err := m.statObject(ctx, "list", prefix, bucket, key)
		switch {
		case err == nil:
			if err := fn(Object{URI: base + key, Size: oi.Size}); err != nil {
				return err
			}
		case !errors.Is(err, ErrNotFound):
			return err
		case errors.Is(err, ErrBucketNotFound):
			return nil
		}
		key += "/"
	}
	return m.listKeys(ctx, prefix, bucket, key, func(oi minio.ObjectInfo) error {
		if isManifestKey(oi.Key) || strings.HasSuffix(oi.Key, "/") {
			return nil
		}
		return fn(Object{URI: base + oi.Key, Size: oi.Size})
	})
}

// Delete implements contract.ArtifactStore: it removes the artifact at
// prefix and everything under prefix/, manifests first so that nothing
// half-deleted looks complete. Deleting a whole bucket is refused.
func (m *MinIO) Delete(ctx context.Context, prefix string) error {
	bucket, key, err := m.locate(prefix)
	if err != nil {
		return fmt.Errorf("refusing to delete %s: %w", prefix, err)
	}
	if err := m.removeObjects(ctx, prefix, bucket, []string{manifestKey(key)}); err != nil {
		return err
	}
	if err := m.removeTree(ctx, prefix, bucket, key+"/"); err != nil {
		return err
	}
	return m.removeObjects(ctx, prefix, bucket, []string{key})
}

// forEach runs fn for 0..n-1 with at most limit calls at once. The first
// error cancels the others and is returned.
func forEach(ctx context.Context, n, limit int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(limit, 1))
	var once sync.Once
	var first error
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err })
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
