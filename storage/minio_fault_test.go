package storage_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlpipe/mlpipe/runner"
	"github.com/mlpipe/mlpipe/storage"
	"github.com/mlpipe/mlpipe/storage/storagetest"
)

// TestMinIOServerRestartMidUpload kills the server while an upload runs
// and starts it again, a second later or only once the upload gave up. The
// upload must then succeed (after retries) with the right content, or fail
// with a clear error and leave nothing that looks complete.
func TestMinIOServerRestartMidUpload(t *testing.T) {
	sources := []struct {
		name string
		make func(t *testing.T) string
	}{
		{"file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "big")
			if err := os.WriteFile(p, bytes.Repeat([]byte("0123456789abcdef"), 256<<20/16), 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"dir", func(t *testing.T) string {
			dir := filepath.Join(t.TempDir(), "tree")
			for i := range 600 {
				p := filepath.Join(dir, fmt.Sprintf("d%02d", i%20), fmt.Sprintf("f%03d", i))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, bytes.Repeat([]byte{byte(i)}, 64<<10), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			return dir
		}},
	}
	type test struct {
		name     string
		make     func(t *testing.T) string
		restart  bool // a second after the kill; else once Put returned
		mustWork bool
	}
	var tests []test
	for _, src := range sources {
		tests = append(tests,
			test{src.name + "/restarted", src.make, true, true},
			test{src.name + "/down", src.make, false, false})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.make(t)
			srv := storagetest.StartMinIO(t)
			reached := make(chan struct{})
			var once sync.Once
			var logs syncBuffer
			s := openMinIO(t, srv, "minio://faults/p", func(o *storage.MinIOOptions) {
				o.ProgressMin = 1
				o.Progress = func(p storage.Progress) {
					if p.Op == "put" && p.Done > p.Total/5 {
						once.Do(func() { close(reached) })
					}
				}
				o.Retries, o.RetryBackoff, o.RetryMaxBackoff, o.ClientRetries = 8, 250*time.Millisecond, 2*time.Second, 2
				if !tc.restart {
					o.Retries, o.ClientRetries = 2, 1
				}
				o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			u := "minio://faults/p/run/task/" + tc.name
			type result struct {
				info runner.ArtifactInfo
				err  error
			}
			done := make(chan result, 1)
			go func() {
				info, err := s.Put(t.Context(), u, src)
				done <- result{info, err}
			}()
			var r result
			select {
			case <-reached:
				srv.Stop()
				if tc.restart {
					time.Sleep(time.Second)
					srv.Start()
					r = <-done
				} else {
					r = <-done
					srv.Start()
				}
			case r = <-done:
				t.Log("the upload ended before the server could be stopped")
			}
			if r.err != nil {
				if tc.mustWork {
					t.Errorf("Put failed although the server came back within its retries: %v", r.err)
				}
				t.Logf("Put failed: %v", r.err)
				if !strings.Contains(r.err.Error(), srv.Endpoint) {
					t.Errorf("the error does not name the endpoint: %v", r.err)
				}
				if _, err := s.Stat(t.Context(), u); !errors.Is(err, storage.ErrNotFound) {
					t.Errorf("after a failed Put, Stat = %v; want ErrNotFound", err)
				}
				return
			}
			t.Logf("Put succeeded; %d retries logged", strings.Count(logs.String(), "retrying"))
			if _, err := s.Get(t.Context(), u, filepath.Join(t.TempDir(), "check"), r.info.Digest); err != nil {
				t.Errorf("Get after the restart: %v", err)
			}
			want := localInfo(t, src)
			if r.info != want {
				t.Errorf("Put = %+v, want %+v", r.info, want)
			}
			if strings.Contains(logs.String(), srv.SecretKey) {
				t.Error("the log shows the secret key")
			}
		})
	}
}

// localInfo digests a local file or tree.
func localInfo(t *testing.T, p string) runner.ArtifactInfo {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if !st.IsDir() {
		d, n, err := storage.FileDigest(p)
		if err != nil {
			t.Fatal(err)
		}
		return runner.ArtifactInfo{Digest: d, Size: n}
	}
	entries, err := storage.ScanDir(p)
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, e := range entries {
		size += e.Size
	}
	return runner.ArtifactInfo{Digest: storage.TreeDigest(entries), Size: size, Dir: true}
}

// syncBuffer is a bytes.Buffer safe for a logger used from several
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
