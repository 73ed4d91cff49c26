package storage

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/minio/minio-go/v7"
)

// Small files of a directory artifact travel to MinIO in batches: one
// request carries a tar of many files, which the server unpacks into one
// object per file (MinIO's Snowball auto-extract, through minio-go's
// PutObjectsSnowball), each with its digest as user metadata. A MinIO
// server spends 2 to 3 ms of CPU on every small PUT (signature, request,
// metadata and data writes); a batch pays the request part once. Only
// minio:// roots batch: S3 does not unpack such uploads. A server that
// stored a batch without unpacking it is caught by the listing that ends
// every directory upload (checkUploaded): the missing files are then sent
// one by one and batching stays off for the store.
const (
	batchFileMax  = 1 << 20  // files up to this size are batched
	batchMinFiles = 16       // fewer small files than this go one by one
	batchMaxFiles = 1000     // per batch
	batchMaxBytes = 16 << 20 // per batch (each batch is built in memory)
	batchSpread   = 4        // split into at least this many batches, to keep both ends busy
)

// planUpload splits the entries of a directory into batches of small files
// and files sent on their own (indices into entries).
func (m *MinIO) planUpload(entries []DirEntry) (batches [][]int, single []int) {
	var small []int
	for i, e := range entries {
		if e.Size <= batchFileMax {
			small = append(small, i)
		} else {
			single = append(single, i)
		}
	}
	if m.scheme != "minio" || m.noBatch.Load() || len(small) < batchMinFiles {
		return nil, append(single, small...)
	}
	per := min(batchMaxFiles, max(batchMinFiles, (len(small)+batchSpread-1)/batchSpread))
	var cur []int
	var bytes int64
	for _, i := range small {
		if len(cur) == per || (len(cur) > 0 && bytes+entries[i].Size > batchMaxBytes) {
			batches, cur, bytes = append(batches, cur), nil, 0
		}
		cur = append(cur, i)
		bytes += entries[i].Size
	}
	if len(cur) > 0 {
		batches = append(batches, cur)
	}
	return batches, single
}

// putBatch sends the files idx of the directory at dir as one batch.
func (m *MinIO) putBatch(ctx context.Context, uri, bucket, key, dir string, entries []DirEntry, idx []int, prog *progressTracker) error {
	err := m.retry(ctx, "put", uri, bucket, func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		objs := make(chan minio.SnowballObject)
		opened := make(chan error, 1)
		go func() {
			defer close(objs)
			for _, i := range idx {
				e := entries[i]
				f, err := os.Open(filepath.Join(dir, filepath.FromSlash(e.Path)))
				if err != nil {
					opened <- err
					cancel()
					return
				}
				o := minio.SnowballObject{
					Key: key + "/" + e.Path, Size: e.Size, Content: f, Close: func() { f.Close() },
					Headers: http.Header{"X-Amz-Meta-" + metaSHA256: {cleanDigest(e.Digest)}},
				}
				select {
				case objs <- o:
				case <-ctx.Done():
					f.Close()
					return
				}
			}
		}()
		err := m.client.PutObjectsSnowball(ctx, bucket, minio.SnowballOptions{
			InMemory: true,
			Opts:     minio.PutObjectOptions{ContentType: "application/x-tar", DisableContentSha256: true},
		}, objs)
		cancel()
		for o := range objs { // the producer stops once canceled
			o.Close()
		}
		select {
		case err := <-opened:
			return err
		default:
		}
		return err
	})
	if err != nil {
		return err
	}
	var sent int64
	for _, i := range idx {
		sent += entries[i].Size
	}
	prog.add(sent)
	return nil
}

// checkUploaded lists what a directory upload left under key/ and
// returns the entries that are missing or have the wrong size, and the
// keys that do not belong to it.
func (m *MinIO) checkUploaded(ctx context.Context, uri, bucket, key string, entries []DirEntry) (missing []int, stale []string, err error) {
	want := make(map[string]int, len(entries))
	for i, e := range entries {
		want[key+"/"+e.Path] = i
	}
	found := make([]bool, len(entries))
	err = m.listKeys(ctx, uri, bucket, key+"/", func(oi minio.ObjectInfo) error {
		i, ok := want[oi.Key]
		switch {
		case !ok:
			stale = append(stale, oi.Key)
		case oi.Size == entries[i].Size:
			found[i] = true
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for i, ok := range found {
		if !ok {
			missing = append(missing, i)
		}
	}
	return missing, stale, nil
}

// sendMissing uploads one by one the files a batch did not deliver, and
// stops batching for this store.
func (m *MinIO) sendMissing(ctx context.Context, uri, bucket, key, dir string, entries []DirEntry, missing []int, prog *progressTracker) error {
	if m.noBatch.CompareAndSwap(false, true) {
		m.log.WarnContext(ctx, "the server did not unpack a batch upload (not MinIO's Snowball auto-extract?); sending files one by one from now on; a snowball-upload-*.tar object may be left at the bucket's root",
			"artifact", uri, "missing", len(missing))
	}
	return forEach(ctx, len(missing), m.opts.Concurrency, func(ctx context.Context, j int) error {
		e := entries[missing[j]]
		return m.retry(ctx, "put", uri+"/"+e.Path, bucket, func(ctx context.Context) error {
			return m.uploadFile(ctx, bucket, key+"/"+e.Path, filepath.Join(dir, filepath.FromSlash(e.Path)), e.Digest, e.Size, prog)
		})
	})
}

// errIncomplete reports files a directory upload could not deliver.
func errIncomplete(uri string, n int) error {
	return fmt.Errorf("put %s: %d files are missing on the server after the upload", uri, n)
}
