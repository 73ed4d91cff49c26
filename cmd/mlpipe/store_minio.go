package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/mlpipe/mlpipe/internal/safefile"
	"github.com/mlpipe/mlpipe/runner"
	"github.com/mlpipe/mlpipe/storage"
)

// openObjectStore opens the MinIO/S3 artifact store for a minio:// or
// s3:// pipeline root from the minio.* configuration: the bucket is the
// root's host part and the key prefix its path. Opening checks the
// endpoint, the credentials and the bucket (creating it when
// minio.create_bucket is set), so a wrong setting fails before any task
// runs.
func (a *app) openObjectStore(root string) (runner.ArtifactStore, error) {
	return a.openObjectStoreAs("pipeline root", root, a.cfg.Minio.CreateBucket)
}

// openObjectStoreAs opens the store for uri, named as what in errors,
// creating a missing bucket only when create is set.
func (a *app) openObjectStoreAs(what, root string, create bool) (*storage.MinIO, error) {
	if _, _, _, err := storage.ParseObjectURI(root); err != nil {
		return nil, usagef("%s: %v", what, err)
	}
	c := a.cfg.Minio
	if c.Endpoint == "" {
		return nil, usagef("%s %s needs an object store endpoint: set MLPIPE_MINIO_ENDPOINT (or minio.endpoint in the configuration file)", what, root)
	}
	var key []byte
	switch c.Verify {
	case "", "checksum":
		key = a.checksumKey()
	case "sha256":
	default:
		return nil, usagef("minio.verify %q must be checksum or sha256", c.Verify)
	}
	opts := storage.MinIOOptions{
		Endpoint:       c.Endpoint,
		AccessKey:      c.AccessKey,
		SecretKey:      c.SecretKey,
		DisableTLS:     !c.Secure,
		CAFile:         c.CAFile,
		Region:         c.Region,
		PathStyle:      c.PathStyle,
		CreateBucket:   create,
		RequestTimeout: zeroIsOff(c.RequestTimeout),
		Retries:        int(zeroIsOff(time.Duration(c.Retries))),
		Logger:         a.log,
		Progress:       a.reportTransfer,
		ChecksumKey:    key,
	}
	ctx := a.root.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	s, err := storage.OpenMinIO(ctx, root, opts)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, root, err)
	}
	return s, nil
}

// zeroIsOff maps a configured 0 ("none") to the store's negative "off"
// (its 0 means "the default").
func zeroIsOff(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// checksumKey is the key that seals the S3 checksums of this user's
// uploads to their sha256 (storage.MinIOOptions.ChecksumKey):
// <state dir>/keys/checksum.key, 32 random bytes made on first use, 0600.
// Without it (a read-only state directory, a key file others could
// change), downloads are verified by hashing, with a warning.
func (a *app) checksumKey() []byte {
	p := a.layout().ChecksumKey()
	key, err := readOrMakeKey(p)
	if err != nil {
		a.log.Warn("no checksum key: downloads from the object store are verified by hashing them", "file", p, "err", err.Error())
		return nil
	}
	return key
}

// checksumKeySize is the size of a checksum key in bytes.
const checksumKeySize = 32

// readOrMakeKey reads the key file p, making it (and its directory, 0700)
// when missing: written to a temporary file and linked into place, so that
// another mlpipe never reads a half-written key. A key file that is a
// link, not a regular file, of the wrong size, or that others can read or
// change is refused, as is a key directory others can change.
func readOrMakeKey(p string) ([]byte, error) {
	key, err := readKey(p)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if st, err := os.Lstat(dir); err != nil {
		return nil, err
	} else if !st.IsDir() || st.Mode().Perm()&0o022 != 0 {
		return nil, fmt.Errorf("%s is not a directory only its owner can change (mode %v)", dir, st.Mode())
	}
	key = make([]byte, checksumKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, ".checksum.key.*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	// CreateTemp made it 0600. Link fails when another mlpipe was first:
	// its key is the one.
	if err := os.Link(tmp.Name(), p); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readKey(p)
		}
		return nil, err
	}
	return key, nil
}

func readKey(p string) ([]byte, error) {
	f, err := safefile.OpenRegular(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s can be read or changed by other users (mode %v): make it 0600", p, st.Mode().Perm())
	}
	key, err := io.ReadAll(io.LimitReader(f, checksumKeySize+1))
	if err != nil {
		return nil, err
	}
	if len(key) != checksumKeySize {
		return nil, fmt.Errorf("%s holds %d bytes, want %d", p, len(key), checksumKeySize)
	}
	return key, nil
}
