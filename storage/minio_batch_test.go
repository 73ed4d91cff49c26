package storage_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/mlpipe/mlpipe/storage"
	"github.com/mlpipe/mlpipe/storage/storagetest"
)

// putCounter is a reverse proxy in front of a MinIO server that counts
// PUT requests, and can answer batch uploads itself without passing them
// on (a server that accepts a Snowball upload but does not unpack it).
type putCounter struct {
	puts, batches atomic.Int64
	swallow       atomic.Bool
	url           *url.URL
}

func newPutCounter(t *testing.T, srv *storagetest.MinIOServer) *putCounter {
	t.Helper()
	target, err := url.Parse("http://" + srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	pc := &putCounter{}
	rp := httputil.NewSingleHostReverseProxy(target)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			pc.puts.Add(1)
			if strings.EqualFold(r.Header.Get("X-Amz-Meta-Snowball-Auto-Extract"), "true") {
				pc.batches.Add(1)
				if pc.swallow.Load() {
					io.Copy(io.Discard, r.Body)
					w.Header().Set("ETag", `"d41d8cd98f00b204e9800998ecf8427e"`)
					w.WriteHeader(http.StatusOK)
					return
				}
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	pc.url, _ = url.Parse(hs.URL)
	return pc
}

// smallFiles makes a directory of n files of a few KiB and one of 2 MiB.
func smallFiles(t *testing.T, n int) (string, map[string][]byte) {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{}
	for i := range n {
		files[fmt.Sprintf("shard-%d/part-%03d", i%4, i)] = []byte(strings.Repeat(fmt.Sprintf("%d,", i), 500+i))
	}
	files["big.bin"] = []byte(strings.Repeat("0123456789abcdef", 2<<20/16))
	for name, b := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, files
}

// checkObjects compares the objects under prefix with files: same keys,
// same content, and each with its sha256 as metadata.
func checkObjects(t *testing.T, c *minio.Client, bucket, prefix string, files map[string][]byte) {
	t.Helper()
	n := 0
	for oi := range c.ListObjects(t.Context(), bucket, minio.ListObjectsOptions{Prefix: prefix + "/", Recursive: true}) {
		if oi.Err != nil {
			t.Fatal(oi.Err)
		}
		n++
		name := strings.TrimPrefix(oi.Key, prefix+"/")
		want, ok := files[name]
		if !ok {
			t.Errorf("unexpected object %s", oi.Key)
			continue
		}
		st, err := c.StatObject(t.Context(), bucket, oi.Key, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(want)
		if st.Size != int64(len(want)) || st.UserMetadata["Mlpipe-Sha256"] != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: size %d (want %d), sha256 metadata %q", oi.Key, st.Size, len(want), st.UserMetadata["Mlpipe-Sha256"])
		}
	}
	if n != len(files) {
		t.Errorf("%d objects under %s, want %d", n, prefix, len(files))
	}
}

// TestMinIOBatchesSmallFiles: with a minio:// root the small files of a
// directory go in a few batch requests that the server unpacks into one
// object per file, with their digests; the large file goes on its own;
// with s3:// every file is its own request.
func TestMinIOBatchesSmallFiles(t *testing.T) {
	srv := storagetest.StartMinIO(t)
	pc := newPutCounter(t, srv)
	dir, files := smallFiles(t, 200)
	c := rawClient(t, srv)
	for _, tc := range []struct {
		scheme    string
		batches   int64
		maxPuts   int64
		minPuts   int64
		prefixKey string
	}{
		{scheme: "minio", batches: 4, minPuts: 4 + 1, maxPuts: 4 + 1 + 2, prefixKey: "b/dir"},
		{scheme: "s3", batches: 0, minPuts: 201, maxPuts: 201 + 2, prefixKey: "s/dir"},
	} {
		t.Run(tc.scheme, func(t *testing.T) {
			s := openMinIO(t, srv, tc.scheme+"://batch/"+strings.Split(tc.prefixKey, "/")[0], func(o *storage.MinIOOptions) { o.Endpoint = pc.url.Host })
			pc.puts.Store(0)
			pc.batches.Store(0)
			info, err := s.Put(t.Context(), tc.scheme+"://batch/"+tc.prefixKey, dir)
			if err != nil {
				t.Fatal(err)
			}
			if p, b := pc.puts.Load(), pc.batches.Load(); b != tc.batches || p < tc.minPuts || p > tc.maxPuts {
				t.Errorf("%d PUT requests, %d of them batches; want %d batches and %d to %d PUTs", p, b, tc.batches, tc.minPuts, tc.maxPuts)
			}
			checkObjects(t, c, "batch", tc.prefixKey, files)
			got := filepath.Join(t.TempDir(), "got")
			back, err := s.Get(t.Context(), tc.scheme+"://batch/"+tc.prefixKey, got, info.Digest)
			if err != nil || back.Digest != info.Digest {
				t.Errorf("Get = %+v, %v", back, err)
			}
		})
	}
	// Nothing else is left in the bucket (no batch archives at its root).
	for oi := range c.ListObjects(t.Context(), "batch", minio.ListObjectsOptions{Recursive: true}) {
		if !strings.HasPrefix(oi.Key, "b/") && !strings.HasPrefix(oi.Key, "s/") {
			t.Errorf("stray object %s", oi.Key)
		}
	}
}

// TestMinIOBatchNotUnpacked: a server that accepts a batch without
// unpacking it is caught by the listing after the upload; the missing
// files are sent one by one, the store warns once and stops batching.
func TestMinIOBatchNotUnpacked(t *testing.T) {
	srv := storagetest.StartMinIO(t)
	pc := newPutCounter(t, srv)
	pc.swallow.Store(true)
	dir, files := smallFiles(t, 50)
	var logs syncBuffer
	s := openMinIO(t, srv, "minio://nounpack/root", func(o *storage.MinIOOptions) {
		o.Endpoint = pc.url.Host
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	info, err := s.Put(t.Context(), "minio://nounpack/root/a", dir)
	if err != nil {
		t.Fatal(err)
	}
	if pc.batches.Load() == 0 {
		t.Fatal("no batch was sent")
	}
	checkObjects(t, rawClient(t, srv), "nounpack", "root/a", files)
	if !strings.Contains(logs.String(), "did not unpack") {
		t.Errorf("no warning:\n%s", logs.String())
	}
	if _, err := s.Get(t.Context(), "minio://nounpack/root/a", filepath.Join(t.TempDir(), "got"), info.Digest); err != nil {
		t.Error(err)
	}
	pc.batches.Store(0)
	if _, err := s.Put(t.Context(), "minio://nounpack/root/b", dir); err != nil {
		t.Fatal(err)
	}
	if n := pc.batches.Load(); n != 0 {
		t.Errorf("%d batches after the server was found not to unpack them", n)
	}
}
