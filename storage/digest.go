package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/minio/minio-go/v7"
)

// DigestPrefix prefixes every digest mlpipe records.
const DigestPrefix = "sha256:"

// FileDigest returns the sha256 digest and size of a file.
func FileDigest(path string) (string, int64, error) {
	return fileDigest(context.TODO(), path)
}

// fileDigest is FileDigest that stops when ctx ends.
func fileDigest(ctx context.Context, path string) (string, int64, error) {
	f, err := openRegular(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	buf := getBuffer()
	defer putBuffer(buf)
	n, err := io.CopyBuffer(h, ctxReader{ctx, f}, *buf)
	if err != nil {
		return "", 0, err
	}
	return DigestPrefix + hex.EncodeToString(h.Sum(nil)), n, nil
}

// fileDigestCRC is fileDigest plus the file's CRC64NVME (base64, as S3
// writes checksums), computed in the same pass: the store sends it with
// the upload and checks downloads against it instead of hashing again.
func fileDigestCRC(ctx context.Context, open opener) (digest, crc string, n int64, err error) {
	f, err := open()
	if err != nil {
		return "", "", 0, err
	}
	defer f.Close()
	h, c := sha256.New(), minio.ChecksumCRC64NVME.Hasher()
	buf := getBuffer()
	defer putBuffer(buf)
	n, err = io.CopyBuffer(io.MultiWriter(h, c), ctxReader{ctx, f}, *buf)
	if err != nil {
		return "", "", 0, err
	}
	return DigestPrefix + hex.EncodeToString(h.Sum(nil)), base64.StdEncoding.EncodeToString(c.Sum(nil)), n, nil
}

// DirEntry is one file of a directory artifact.
type DirEntry struct {
	Path   string // slash-separated, relative to the directory
	Size   int64
	Digest string
}

// TreeDigest combines the entries of a directory artifact into one digest:
// sha256 over "path\x00size\x00digest\n" for each file in path order. Empty
// directories are not represented.
func TreeDigest(entries []DirEntry) string {
	sorted := append([]DirEntry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	h := sha256.New()
	for _, e := range sorted {
		fmt.Fprintf(h, "%s\x00%d\x00%s\n", e.Path, e.Size, e.Digest)
	}
	return DigestPrefix + hex.EncodeToString(h.Sum(nil))
}

// ScanDir lists the regular files under dir with their digests.
func ScanDir(dir string) ([]DirEntry, error) {
	return scanDir(context.TODO(), dir)
}

// scanDir is ScanDir that stops when ctx ends.
func scanDir(ctx context.Context, dir string) ([]DirEntry, error) {
	out, err := listDir(ctx, dir)
	if err != nil {
		return nil, err
	}
	for i := range out {
		p := filepath.Join(dir, filepath.FromSlash(out[i].Path))
		if out[i].Digest, out[i].Size, err = fileDigest(ctx, p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// listDir lists the regular files under dir with their sizes, in path
// order, without reading them (Digest is empty). A symbolic link is an
// error; other special files are left out.
func listDir(ctx context.Context, dir string) ([]DirEntry, error) {
	var out []DirEntry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			if d.Type()&fs.ModeSymlink != 0 {
				return fmt.Errorf("%s: symbolic links are not stored in artifacts", p)
			}
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, DirEntry{Path: filepath.ToSlash(rel), Size: info.Size()})
		return nil
	})
	return out, err
}

// hashingReader computes a digest while data streams through it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func newHashingReader(r io.Reader) *hashingReader {
	return &hashingReader{r: r, h: sha256.New()}
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func (h *hashingReader) digest() string { return DigestPrefix + hex.EncodeToString(h.h.Sum(nil)) }

func cleanDigest(d string) string { return strings.TrimPrefix(d, DigestPrefix) }

// ctxReader fails reads once ctx is done, so long copies stop on
// cancellation.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// randomHex returns 2n random hex digits, for temporary names.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// buffers holds the 1 MiB copy buffers of transfers, so that artifacts of
// many small files do not allocate one each.
var buffers = sync.Pool{New: func() any {
	b := make([]byte, 1<<20)
	return &b
}}

func getBuffer() *[]byte  { return buffers.Get().(*[]byte) }
func putBuffer(b *[]byte) { buffers.Put(b) }

// copyHashed copies src to dst while another goroutine hashes the same
// bytes, so that hashing (about 1 GB/s) overlaps the transfer instead of
// adding to it. It returns the bytes copied and their digest.
func copyHashed(dst io.Writer, src io.Reader) (int64, string, error) {
	const nbuf, size = 4, 1 << 20
	free := make(chan []byte, nbuf)
	for range nbuf {
		free <- make([]byte, size)
	}
	queue := make(chan []byte, nbuf)
	sum := make(chan string, 1)
	go func() {
		h := sha256.New()
		for b := range queue {
			h.Write(b)
			free <- b[:cap(b)]
		}
		sum <- DigestPrefix + hex.EncodeToString(h.Sum(nil))
	}()
	var n int64
	var err error
	for {
		b := <-free
		k, rerr := io.ReadFull(src, b)
		if k > 0 {
			if _, werr := dst.Write(b[:k]); werr != nil {
				err = werr
				break
			}
			n += int64(k)
			queue <- b[:k]
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break // the end; a short object is caught by the caller's size check
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	close(queue)
	return n, <-sum, err
}
