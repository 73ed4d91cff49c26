package storage_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mlpipe/mlpipe/runner"
	"github.com/mlpipe/mlpipe/storage"
	"github.com/mlpipe/mlpipe/storage/storagetest"
)

// Short limits for the tests of a server that stops answering.
const (
	stallTimeout = time.Second
	stallRetries = 2
	stallBackoff = 50 * time.Millisecond
)

// waitLog collects the store's reports.
type waitLog struct {
	mu      sync.Mutex
	waits   []storage.Progress
	moved   map[string]bool // op: bytes moved in a large transfer
	onWait  func(storage.Progress)
	onMoved func(op string)
}

func (w *waitLog) report(p storage.Progress) {
	w.mu.Lock()
	var onWait func(storage.Progress)
	var onMoved func(string)
	if p.Waiting {
		w.waits = append(w.waits, p)
		onWait = w.onWait
	} else if p.Done > 0 && p.Done < p.Total {
		if w.moved == nil {
			w.moved = map[string]bool{}
		}
		w.moved[p.Op] = true
		onMoved = w.onMoved
	}
	w.mu.Unlock()
	if onWait != nil {
		onWait(p)
	}
	if onMoved != nil {
		onMoved(p.Op)
	}
}

// retries returns the retry numbers reported for uri.
func (w *waitLog) retries(uri string) []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	var r []int
	for _, p := range w.waits {
		if p.URI == uri {
			r = append(r, p.Retry)
		}
	}
	return r
}

func (w *waitLog) all() []storage.Progress {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]storage.Progress(nil), w.waits...)
}

// stallRig is a MinIO server behind a proxy that can stall, and a store
// on the proxy with short limits.
type stallRig struct {
	srv   *storagetest.MinIOServer
	proxy *storagetest.StallProxy
	store *storage.MinIO
	log   *waitLog
	dir   string
}

func newStallRig(t *testing.T, edit func(*storage.MinIOOptions)) *stallRig {
	t.Helper()
	srv := storagetest.StartMinIO(t)
	r := &stallRig{srv: srv, proxy: storagetest.NewStallProxy(t, srv.Endpoint), log: &waitLog{}, dir: t.TempDir()}
	r.store = openMinIO(t, srv, "minio://stall/p", func(o *storage.MinIOOptions) {
		o.Endpoint = r.proxy.Addr
		o.RequestTimeout = stallTimeout
		o.Retries = stallRetries
		o.RetryBackoff, o.RetryMaxBackoff = stallBackoff, 4*stallBackoff
		o.ClientRetries = 1
		o.PartSize = 5 << 20
		o.ProgressMin = 1
		o.Progress = r.log.report
		if edit != nil {
			edit(o)
		}
	})
	return r
}

// file writes a local file of n pseudo-random bytes.
func (r *stallRig) file(t *testing.T, name string, n int) string {
	t.Helper()
	b := make([]byte, n)
	x := uint32(len(name)*7919 + n)
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	p := filepath.Join(r.dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// stallOp is an operation of a test on a rig; it returns what to compare
// after a success.
type stallOp struct {
	name string
	// setup stores what the operation needs, before anything stalls.
	setup func(t *testing.T, r *stallRig, u string)
	run   func(ctx context.Context, r *stallRig, u string) (string, error)
	// midTransfer: stall once bytes of op moved, not before the start.
	midTransfer string
	// failed checks what a failed operation left.
	failed func(t *testing.T, r *stallRig, u string)
}

var (
	opPutSmall = stallOp{
		name: "put",
		run: func(ctx context.Context, r *stallRig, u string) (string, error) {
			info, err := r.store.Put(ctx, u, filepath.Join(r.dir, "small"))
			return info.Digest, err
		},
		setup:  func(t *testing.T, r *stallRig, u string) { r.file(t, "small", 3<<20) },
		failed: leftNothing,
	}
	opPutMultipart = stallOp{
		name: "put multipart mid-transfer",
		run: func(ctx context.Context, r *stallRig, u string) (string, error) {
			info, err := r.store.Put(ctx, u, filepath.Join(r.dir, "big"))
			return info.Digest, err
		},
		setup:       func(t *testing.T, r *stallRig, u string) { r.file(t, "big", 48<<20) },
		midTransfer: "put",
		failed:      leftNothing,
	}
	opGet = stallOp{
		name:  "get",
		setup: putObject("small", 3<<20),
		run: func(ctx context.Context, r *stallRig, u string) (string, error) {
			info, err := r.store.Get(ctx, u, filepath.Join(r.dir, "out", "got"), "")
			if err == nil {
				d, _, err := storage.FileDigest(filepath.Join(r.dir, "out", "got"))
				if err != nil || d != info.Digest {
					return "", errors.New("the downloaded file does not match its digest")
				}
			}
			return info.Digest, err
		},
		failed: downloadedNothing,
	}
	opGetMidBody = stallOp{
		name:        "get mid-body",
		setup:       putObject("big", 48<<20),
		run:         opGet.run,
		midTransfer: "get",
		failed:      downloadedNothing,
	}
	opStat = stallOp{
		name:  "stat",
		setup: putObject("small", 3<<20),
		run: func(ctx context.Context, r *stallRig, u string) (string, error) {
			info, err := r.store.Stat(ctx, u)
			return info.Digest, err
		},
	}
)

// putObject is a setup that stores a file of n bytes at the URI.
func putObject(name string, n int) func(t *testing.T, r *stallRig, u string) {
	return func(t *testing.T, r *stallRig, u string) {
		t.Helper()
		if _, err := r.store.Put(t.Context(), u, r.file(t, name, n)); err != nil {
			t.Fatal(err)
		}
	}
}

func leftNothing(t *testing.T, r *stallRig, u string) {
	t.Helper()
	if _, err := r.store.Stat(t.Context(), u); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("after the failed Put, Stat = %v; want ErrNotFound (no half object)", err)
	}
}

func downloadedNothing(t *testing.T, r *stallRig, u string) {
	t.Helper()
	if left, _ := os.ReadDir(filepath.Join(r.dir, "out")); len(left) > 0 {
		t.Errorf("the failed Get left %d entries", len(left))
	}
}

// stallDuring stalls the rig's proxy before op runs, or once bytes of
// op.midTransfer moved.
func stallDuring(t *testing.T, r *stallRig, op stallOp) {
	t.Helper()
	if op.midTransfer == "" {
		r.proxy.Stall()
		return
	}
	var once sync.Once
	r.log.mu.Lock()
	r.log.onMoved = func(o string) {
		if o == op.midTransfer {
			once.Do(r.proxy.Stall)
		}
	}
	r.log.mu.Unlock()
}

// TestSecurityMinIOFrozenServerFails: a server that stops answering makes
// every kind of operation fail after the retries, within the configured
// time, with an error naming the artifact, the endpoint, the time and the
// attempts (and not the secret), after reporting each wait with rising
// retry numbers.
func TestSecurityMinIOFrozenServerFails(t *testing.T) {
	for _, op := range []stallOp{opPutSmall, opPutMultipart, opGet, opGetMidBody, opStat} {
		t.Run(op.name, func(t *testing.T) {
			r := newStallRig(t, nil)
			u := "minio://stall/p/run/task/out"
			if op.setup != nil {
				op.setup(t, r, u)
			}
			stallDuring(t, r, op)
			start := time.Now()
			_, err := op.run(t.Context(), r, u)
			took := time.Since(start)
			r.proxy.Resume()
			checkStallError(t, err, u, r.proxy.Addr, r.srv.SecretKey, took)
			if diff := cmp.Diff([]int{1, 2}, r.log.retries(u)); diff != "" {
				t.Errorf("retries reported for %s (-want +got):\n%s\nall: %+v", u, diff, r.log.all())
			}
			for _, p := range r.log.all() {
				if p.Endpoint != r.proxy.Addr || p.Reason == "" || strings.Contains(p.Reason, r.srv.SecretKey) || p.Done != 0 || !strings.HasPrefix(p.WaitMessage(), "waiting for "+p.URI+" (retry ") {
					t.Errorf("wait report %+v (%q)", p, p.WaitMessage())
				}
			}
			if op.failed != nil {
				op.failed(t, r, u)
			}
		})
	}
}

// checkStallError checks the error of an operation on a server that did
// not answer.
func checkStallError(t *testing.T, err error, uri, endpoint, secret string, took time.Duration) {
	t.Helper()
	if err == nil {
		t.Fatal("the operation succeeded against a stalled server")
	}
	t.Logf("failed after %v: %v", took.Round(time.Millisecond), err)
	if !errors.Is(err, storage.ErrUnreachable) {
		t.Errorf("error %v; want ErrUnreachable", err)
	}
	msg := err.Error()
	for _, want := range []string{uri, "no answer from " + endpoint + " for ", ", 3 attempts"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, secret) {
		t.Errorf("error %q shows the secret key", msg)
	}
	// Three attempts of about a second each, two short backoffs.
	if limit := (stallRetries+1)*stallTimeout + 2*time.Second; took > limit {
		t.Errorf("failing took %v, want at most %v", took, limit)
	}
	if least := (stallRetries + 1) * stallTimeout * 9 / 10; took < least {
		t.Errorf("failing took only %v, want the retries (at least %v)", took, least)
	}
}

// TestSecurityMinIOFrozenProcess freezes the MinIO process itself
// (SIGSTOP) under Stat and Get, the way a hung server behaves, with no
// proxy between.
func TestSecurityMinIOFrozenProcess(t *testing.T) {
	srv := storagetest.StartMinIO(t)
	log := &waitLog{}
	s := openMinIO(t, srv, "minio://frozen/p", func(o *storage.MinIOOptions) {
		o.RequestTimeout, o.Retries, o.ClientRetries = stallTimeout, stallRetries, 1
		o.RetryBackoff, o.RetryMaxBackoff = stallBackoff, 4*stallBackoff
		o.Progress = log.report
	})
	u := "minio://frozen/p/a"
	src := writeTemp(t, "content of a")
	if _, err := s.Put(t.Context(), u, src); err != nil {
		t.Fatal(err)
	}
	srv.Freeze()
	defer srv.Thaw()
	start := time.Now()
	_, err := s.Stat(t.Context(), u)
	checkStallError(t, err, u, srv.Endpoint, srv.SecretKey, time.Since(start))
	start = time.Now()
	_, err = s.Get(t.Context(), u, filepath.Join(t.TempDir(), "a"), "")
	checkStallError(t, err, u, srv.Endpoint, srv.SecretKey, time.Since(start))
	if diff := cmp.Diff([]int{1, 2, 1, 2}, log.retries(u)); diff != "" {
		t.Errorf("retries reported (-want +got):\n%s", diff)
	}
	srv.Thaw()
	if _, err := s.Stat(t.Context(), u); err != nil {
		t.Errorf("Stat after the server thawed: %v", err)
	}
}

// TestSecurityMinIOThawedServerRecovers: a server that stops answering for
// less than the retries last, then answers again, costs a retry but the
// operation succeeds with the content intact.
func TestSecurityMinIOThawedServerRecovers(t *testing.T) {
	for _, op := range []stallOp{opPutSmall, opPutMultipart, opGet, opGetMidBody, opStat} {
		t.Run(op.name, func(t *testing.T) {
			r := newStallRig(t, func(o *storage.MinIOOptions) { o.Retries = 4 })
			u := "minio://stall/p/run/task/out"
			if op.setup != nil {
				op.setup(t, r, u)
			}
			var want string
			switch {
			case strings.HasPrefix(op.name, "put"):
				src := filepath.Join(r.dir, map[bool]string{true: "big", false: "small"}[op.midTransfer != ""])
				d, _, err := storage.FileDigest(src)
				if err != nil {
					t.Fatal(err)
				}
				want = d
			default:
				info, err := r.store.Stat(t.Context(), u)
				if err != nil {
					t.Fatal(err)
				}
				want = info.Digest
			}
			var once sync.Once
			r.log.mu.Lock()
			r.log.onWait = func(storage.Progress) { once.Do(r.proxy.Resume) }
			r.log.mu.Unlock()
			stallDuring(t, r, op)
			got, err := op.run(t.Context(), r, u)
			if err != nil {
				t.Fatalf("the operation failed although the server came back: %v", err)
			}
			if got != want {
				t.Errorf("digest %s, want %s", got, want)
			}
			if n := len(r.log.all()); n == 0 {
				t.Error("no wait was reported")
			}
			if strings.HasPrefix(op.name, "put") {
				dst := filepath.Join(t.TempDir(), "check")
				if _, err := r.store.Get(t.Context(), u, dst, want); err != nil {
					t.Errorf("Get of what the retried Put stored: %v", err)
				}
			}
		})
	}
}

// TestSecurityMinIOCancelWhileWaiting: cancelling the context (Ctrl-C)
// ends an operation on a server that does not answer at once, whether it
// waits for an answer or between two attempts.
func TestSecurityMinIOCancelWhileWaiting(t *testing.T) {
	tests := []struct {
		name string
		op   stallOp
		// afterWait: cancel at the first wait report (in the backoff);
		// else a moment after the stall, while a request hangs.
		afterWait bool
	}{
		{"put multipart, request hangs", opPutMultipart, false},
		{"get, request hangs", opGet, false},
		{"stat, in the backoff", opStat, true},
		{"put, in the backoff", opPutSmall, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newStallRig(t, func(o *storage.MinIOOptions) {
				o.RequestTimeout = 5 * time.Second
				if tc.afterWait {
					o.RequestTimeout, o.RetryBackoff, o.RetryMaxBackoff = stallTimeout, 10*time.Second, 10*time.Second
				}
			})
			u := "minio://stall/p/run/task/out"
			if tc.op.setup != nil {
				tc.op.setup(t, r, u)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var cancelled time.Time
			var mu sync.Mutex
			doCancel := func() {
				mu.Lock()
				defer mu.Unlock()
				if cancelled.IsZero() {
					cancelled = time.Now()
					cancel()
				}
			}
			if tc.afterWait {
				r.log.mu.Lock()
				r.log.onWait = func(storage.Progress) { doCancel() }
				r.log.mu.Unlock()
				stallDuring(t, r, tc.op)
			} else {
				var once sync.Once
				stall := func() {
					once.Do(func() {
						r.proxy.Stall()
						time.AfterFunc(300*time.Millisecond, doCancel)
					})
				}
				if tc.op.midTransfer != "" {
					r.log.mu.Lock()
					r.log.onMoved = func(o string) {
						if o == tc.op.midTransfer {
							stall()
						}
					}
					r.log.mu.Unlock()
				} else {
					stall()
				}
			}
			_, err := tc.op.run(ctx, r, u)
			mu.Lock()
			at := cancelled
			mu.Unlock()
			if at.IsZero() {
				t.Fatalf("the operation ended before it was cancelled: %v", err)
			}
			if d := time.Since(at); d > 500*time.Millisecond {
				t.Errorf("the operation returned %v after the cancellation, want at once", d)
			}
			if !errors.Is(err, context.Canceled) {
				t.Errorf("error %v, want context.Canceled", err)
			}
			r.proxy.Resume()
			if tc.op.failed != nil {
				tc.op.failed(t, r, u)
			}
		})
	}
}

// TestSecurityMinIOSlowTransferNotCut: a transfer that takes much longer
// than RequestTimeout but never stands still is not cut, and costs no
// retry.
func TestSecurityMinIOSlowTransferNotCut(t *testing.T) {
	// The proxy forwards 16 MiB/s per direction; a 32 MiB object takes two
	// seconds each way, more than three times the timeout. (A sender's
	// kernel buffer, up to 4 MiB here, drains between two reads of the
	// body and after the last one: a quarter of a second at this rate.)
	const timeout = 600 * time.Millisecond
	r := newStallRig(t, func(o *storage.MinIOOptions) {
		o.RequestTimeout = timeout
		o.PartSize = 64 << 20 // one PUT
	})
	src := r.file(t, "slow", 32<<20)
	want, _, err := storage.FileDigest(src)
	if err != nil {
		t.Fatal(err)
	}
	r.proxy.SetRate(16 << 20)
	u := "minio://stall/p/slow"
	for _, op := range []string{"put", "get"} {
		start := time.Now()
		dst := filepath.Join(t.TempDir(), "slow")
		var info runner.ArtifactInfo
		if op == "put" {
			info, err = r.store.Put(t.Context(), u, src)
		} else {
			info, err = r.store.Get(t.Context(), u, dst, want)
		}
		took := time.Since(start)
		if err != nil {
			t.Fatalf("a slow %s was cut after %v: %v", op, took, err)
		}
		t.Logf("%s took %v", op, took)
		if info.Digest != want {
			t.Errorf("%s digest %s, want %s", op, info.Digest, want)
		}
		if took < 3*timeout {
			t.Errorf("the %s took %v, not long enough to test anything", op, took)
		}
		if op == "get" {
			a, _ := os.ReadFile(src)
			b, _ := os.ReadFile(dst)
			if !bytes.Equal(a, b) {
				t.Error("the downloaded content differs")
			}
		}
	}
	if w := r.log.retries(u); len(w) > 0 {
		t.Errorf("retries reported for a slow but moving transfer: %v (%+v)", w, r.log.all())
	}
}
