package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mlpipe/mlpipe/contract"
)

// Store is an artifact store as the conformance suite (storagetest) and the
// CLI use it: the runner's ArtifactStore (put, get, stat and delete of file
// and directory artifacts) plus listing. Every implementation must pass
// storagetest.Run.
type Store interface {
	contract.ArtifactStore
	// List calls fn for every stored file at or under prefix: a file
	// artifact at prefix itself, and every file of the artifacts below it
	// (a directory artifact contributes one Object per file). The order is
	// unspecified. Prefixes are paths: ".../run1" does not match
	// ".../run10". A prefix with nothing under it lists nothing. An error
	// from fn stops the listing and is returned.
	List(ctx context.Context, prefix string, fn func(Object) error) error
}

// Object is one stored file: a file artifact or one file of a directory
// artifact.
type Object struct {
	URI  string
	Size int64
}

// ErrAccessDenied is returned when the object store refuses the
// credentials or the operation; the error names the endpoint and bucket.
var ErrAccessDenied = errors.New("access denied")

// ErrUnreachable is returned when the object store's endpoint does not
// answer (after retries).
var ErrUnreachable = errors.New("endpoint unreachable")

// ErrBucketNotFound is returned when a bucket does not exist. It matches
// ErrNotFound too, so a missing bucket reads as a missing artifact to code
// that only asks for that.
var ErrBucketNotFound error = bucketNotFound{}

type bucketNotFound struct{}

func (bucketNotFound) Error() string        { return "bucket does not exist" }
func (bucketNotFound) Is(target error) bool { return target == ErrNotFound }

// ParseObjectURI splits minio://bucket/key or s3://bucket/key into its
// scheme, bucket and key (without leading or trailing slashes; the key
// may be empty).
func ParseObjectURI(uri string) (scheme, bucket, key string, err error) {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok || (scheme != "minio" && scheme != "s3") {
		return "", "", "", fmt.Errorf("%q is not a minio:// or s3:// URI", uri)
	}
	bucket, key, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", "", fmt.Errorf("%q names no bucket", uri)
	}
	key = strings.Trim(key, "/")
	for _, seg := range strings.Split(key, "/") {
		if seg == "." || seg == ".." {
			return "", "", "", fmt.Errorf("%q: a key may not hold %q segments", uri, seg)
		}
	}
	if strings.ContainsFunc(uri, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", "", "", fmt.Errorf("%q holds control characters", uri)
	}
	return scheme, bucket, key, nil
}
