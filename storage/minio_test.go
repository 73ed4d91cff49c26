package storage_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/mlpipe/mlpipe/storage"
	"github.com/mlpipe/mlpipe/storage/storagetest"
)

// openMinIO opens a store on srv for root, creating the bucket.
func openMinIO(t *testing.T, srv *storagetest.MinIOServer, root string, edit func(*storage.MinIOOptions)) *storage.MinIO {
	t.Helper()
	opts := srv.Options()
	opts.CreateBucket = true
	if edit != nil {
		edit(&opts)
	}
	s, err := storage.OpenMinIO(t.Context(), root, opts)
	if err != nil {
		t.Fatalf("OpenMinIO(%s): %v", root, err)
	}
	return s
}

// rawClient is a plain minio-go client on srv, for going behind the
// store's back.
func rawClient(t *testing.T, srv *storagetest.MinIOServer) *minio.Client {
	t.Helper()
	c, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMinIOConformance(t *testing.T) {
	srv := storagetest.StartMinIO(t)
	var n atomic.Int64
	storagetest.Run(t, func(t *testing.T) storage.Store {
		i := n.Add(1)
		scheme := map[bool]string{true: "minio", false: "s3"}[i%2 == 1]
		return openMinIO(t, srv, fmt.Sprintf("%s://conformance/v2/artifacts/t%d", scheme, i), nil)
	})
}

// TestMinIOLayout checks the KFP cluster layout: files of a directory
// artifact under <key>/, and a KFP-style listing of the artifact's prefix
// (without a slash, as KFP's launcher does it) sees exactly those files.
func TestMinIOLayout(t *testing.T) {
	srv := storagetest.StartMinIO(t)
	s := openMinIO(t, srv, "minio://mlpipeline/v2/artifacts", nil)
	root := s.RunRoot("training", "run-1")
	if want := "minio://mlpipeline/v2/artifacts/training/run-1"; root != want {
		t.Errorf("RunRoot = %q, want %q", root, want)
	}
	if !s.Remote() {
		t.Error("Remote() = false")
	}
	dir := filepath.Join(t.TempDir(), "model")
	for name, data := range map[string]string{"a.txt": "a", "sub/b.txt": "bb"} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Put(t.Context(), root+"/train/model", dir); err != nil {
		t.Fatal(err)
	}
	c := rawClient(t, srv)
	var kfp []string
	for oi := range c.ListObjects(t.Context(), "mlpipeline", minio.ListObjectsOptions{Prefix: "v2/artifacts/training/run-1/train/model", Recursive: true}) {
		if oi.Err != nil {
			t.Fatal(oi.Err)
		}
		kfp = append(kfp, oi.Key)
	}
	want := []string{"v2/artifacts/training/run-1/train/model/a.txt", "v2/artifacts/training/run-1/train/model/sub/b.txt"}
	if diff := cmp.Diff(want, kfp); diff != "" {
		t.Errorf("objects under the artifact's prefix (-want +got):\n%s", diff)
	}
	oi, err := c.StatObject(t.Context(), "mlpipeline", want[0], minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if oi.UserMetadata["Mlpipe-Sha256"] == "" {
		t.Errorf("object has no Mlpipe-Sha256 metadata: %v", oi.UserMetadata)
	}
}

// TestMinIOAlteredObject: an object changed behind the store's back fails
// its digest check on Get, with or without the digest from the history.
func TestMinIOAlteredObject(t *testing.T) {
	srv := storagetest.StartMinIO(t)
	s := openMinIO(t, srv, "minio://altered/root", nil)
	c := rawClient(t, srv)
	tmp := t.TempDir()
	file := filepath.Join(tmp, "f")
	if err := os.WriteFile(file, []byte("the original content"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "d")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"x", "sub/y"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("content of "+n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, src, alter string // alter: the key rewritten
	}{
		{"file", file, "root/file"},
		{"dir", dir, "root/dir/sub/y"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := "minio://altered/root/" + tc.name
			info, err := s.Put(t.Context(), u, tc.src)
			if err != nil {
				t.Fatal(err)
			}
			// Same length, same metadata, other bytes.
			oi, err := c.StatObject(t.Context(), "altered", tc.alter, minio.StatObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			evil := bytes.Repeat([]byte("X"), int(oi.Size))
			if _, err := c.PutObject(t.Context(), "altered", tc.alter, bytes.NewReader(evil), oi.Size,
				minio.PutObjectOptions{UserMetadata: map[string]string{"Mlpipe-Sha256": oi.UserMetadata["Mlpipe-Sha256"]}}); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"", info.Digest} {
				dst := filepath.Join(t.TempDir(), "got")
				_, err := s.Get(t.Context(), u, dst, want)
				if !errors.Is(err, storage.ErrDigestMismatch) {
					t.Errorf("Get(want %q) of an altered object: %v, want ErrDigestMismatch", want, err)
				}
				if left, _ := os.ReadDir(filepath.Dir(dst)); len(left) > 0 {
					t.Errorf("Get(want %q) left %d entries after the mismatch", want, len(left))
				}
			}
		})
	}
}

// TestMinIOWrongCredentials: the error names the endpoint and the bucket,
// and neither it nor the log shows the secret.
func TestMinIOWrongCredentials(t *testing.T) {
	srv := storagetest.StartMinIO(t)
	tests := []struct {
		name      string
		accessKey string
		secret    string
	}{
		{"wrong secret", srv.AccessKey, "wrong-secret-7f3a9c1e5b"},
		{"unknown access key", "nobody", "another-secret-4d2e8b6a0c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			opts := srv.Options()
			opts.AccessKey, opts.SecretKey = tc.accessKey, tc.secret
			opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			_, err := storage.OpenMinIO(t.Context(), "minio://secret-bucket/prefix", opts)
			if !errors.Is(err, storage.ErrAccessDenied) {
				t.Fatalf("OpenMinIO: %v, want ErrAccessDenied", err)
			}
			msg := err.Error()
			for _, want := range []string{srv.Endpoint, "secret-bucket"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not name %q", msg, want)
				}
			}
			if strings.Contains(msg, tc.secret) || strings.Contains(logs.String(), tc.secret) {
				t.Errorf("the secret key leaked: error %q, log %q", msg, logs.String())
			}
		})
	}
}

// TestMinIOMissingBucket: a clear error without CreateBucket, a bucket
// with it.
func TestMinIOMissingBucket(t *testing.T) {
	srv := storagetest.StartMinIO(t)
	opts := srv.Options()
	_, err := storage.OpenMinIO(t.Context(), "s3://no-such-bucket/x", opts)
	if !errors.Is(err, storage.ErrBucketNotFound) || !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("OpenMinIO of a missing bucket: %v, want ErrBucketNotFound", err)
	}
	for _, want := range []string{"no-such-bucket", srv.Endpoint, "create_bucket"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	opts.CreateBucket = true
	s, err := storage.OpenMinIO(t.Context(), "s3://no-such-bucket/x", opts)
	if err != nil {
		t.Fatalf("OpenMinIO with CreateBucket: %v", err)
	}
	if _, err := storage.OpenMinIO(t.Context(), "s3://no-such-bucket/x", opts); err != nil {
		t.Fatalf("OpenMinIO with CreateBucket of an existing bucket: %v", err)
	}
	// An artifact in another, missing bucket reads as not found.
	_, err = s.Stat(t.Context(), "s3://other-missing-bucket/a/b")
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat in a missing bucket: %v, want ErrNotFound", err)
	}
	src := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(src, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = s.Put(t.Context(), "s3://other-missing-bucket/a/b", src)
	if !errors.Is(err, storage.ErrBucketNotFound) || !strings.Contains(err.Error(), "other-missing-bucket") {
		t.Errorf("Put into a missing bucket: %v, want ErrBucketNotFound naming it", err)
	}
}

func TestMinIOUnreachable(t *testing.T) {
	srv := storagetest.StartMinIO(t)
	opts := srv.Options()
	srv.Stop()
	opts.Retries, opts.ClientRetries, opts.RetryBackoff = 1, -1, 10*time.Millisecond
	start := time.Now()
	_, err := storage.OpenMinIO(t.Context(), "minio://bkt/p", opts)
	if !errors.Is(err, storage.ErrUnreachable) || !strings.Contains(err.Error(), srv.Endpoint) {
		t.Errorf("OpenMinIO of a stopped server: %v, want ErrUnreachable naming %s", err, srv.Endpoint)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("giving up took %v", d)
	}
}

func TestMinIOPlainEndpointWithTLS(t *testing.T) {
	srv := storagetest.StartMinIO(t)
	opts := srv.Options()
	opts.DisableTLS = false
	_, err := storage.OpenMinIO(t.Context(), "minio://bkt/p", opts)
	if err == nil || !strings.Contains(err.Error(), "secure") {
		t.Errorf("OpenMinIO with TLS against a plain-HTTP server: %v, want advice about minio.secure", err)
	}
}

// TestMinIOForeignDirectory: a directory other tools wrote (no manifest)
// is not a complete artifact to Stat, but Get fetches it and checks it
// against the digest it is given.
func TestMinIOForeignDirectory(t *testing.T) {
	srv := storagetest.StartMinIO(t)
	s := openMinIO(t, srv, "minio://foreign/p", nil)
	c := rawClient(t, srv)
	files := map[string]string{"part-0": "zero", "sub/part-1": "one"}
	var entries []storage.DirEntry
	for name, data := range files {
		if _, err := c.PutObject(t.Context(), "foreign", "kfp/out/"+name, strings.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		d, _, err := storage.FileDigest(writeTemp(t, data))
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, storage.DirEntry{Path: name, Size: int64(len(data)), Digest: d})
	}
	u := "minio://foreign/kfp/out"
	if _, err := s.Stat(t.Context(), u); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat of a directory without a manifest: %v, want ErrNotFound", err)
	}
	dst := filepath.Join(t.TempDir(), "out")
	info, err := s.Get(t.Context(), u, dst, storage.TreeDigest(entries))
	if err != nil {
		t.Fatal(err)
	}
	if !info.Dir || info.Size != 7 {
		t.Errorf("Get = %+v, want a 7-byte directory", info)
	}
	if _, err := s.Get(t.Context(), u, filepath.Join(t.TempDir(), "out"), "sha256:"+strings.Repeat("1", 64)); !errors.Is(err, storage.ErrDigestMismatch) {
		t.Errorf("Get with the wrong digest: %v, want ErrDigestMismatch", err)
	}
}

func writeTemp(t *testing.T, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMinIOProgress(t *testing.T) {
	srv := storagetest.StartMinIO(t)
	var mu sync.Mutex
	var got []storage.Progress
	s := openMinIO(t, srv, "minio://progress/p", func(o *storage.MinIOOptions) {
		o.ProgressMin = 1 << 20
		o.Progress = func(p storage.Progress) {
			mu.Lock()
			got = append(got, p)
			mu.Unlock()
		}
	})
	big := writeTemp(t, strings.Repeat("0123456789abcdef", 2<<20/16*9)) // 18 MiB
	small := writeTemp(t, "tiny")
	u := "minio://progress/p/big"
	if _, err := s.Put(t.Context(), u, big); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "minio://progress/p/small", small); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), u, filepath.Join(t.TempDir(), "big"), ""); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	const size = 18 << 20
	for _, op := range []string{"put", "get"} {
		i := slices.IndexFunc(got, func(p storage.Progress) bool { return p.Op == op && p.Done == size })
		if i < 0 {
			t.Errorf("no final %s report in %+v", op, got)
		} else if got[i].Total != size || got[i].URI != u {
			t.Errorf("final %s report %+v", op, got[i])
		}
	}
	for _, p := range got {
		if p.URI != u && !p.Waiting { // waits are reported whatever the size
			t.Errorf("a report for a transfer below ProgressMin: %+v", p)
		}
	}
}

// TestMinIOTLS: TLS is the default; a private CA is trusted through
// CAFile and refused without it.
func TestMinIOTLS(t *testing.T) {
	srv := storagetest.StartMinIOTLS(t)
	s := openMinIO(t, srv, "minio://tls/p", nil)
	if !strings.HasPrefix(s.Endpoint(), "https://") {
		t.Errorf("Endpoint() = %q, want https", s.Endpoint())
	}
	src := writeTemp(t, "over TLS")
	info, err := s.Put(t.Context(), "minio://tls/p/a", src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(t.Context(), "minio://tls/p/a", filepath.Join(t.TempDir(), "a"), info.Digest); err != nil {
		t.Fatal(err)
	}
	opts := srv.Options()
	opts.CAFile = ""
	_, err = storage.OpenMinIO(t.Context(), "minio://tls/p", opts)
	if err == nil || !strings.Contains(err.Error(), "ca_file") {
		t.Errorf("OpenMinIO without the CA: %v, want advice about minio.ca_file", err)
	}
}
