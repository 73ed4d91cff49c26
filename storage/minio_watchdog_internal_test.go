package storage

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// slowReader yields n bytes in chunks, sleeping before each.
type slowReader struct {
	n     int
	chunk int
	every time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	if s.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.every)
	k := min(len(p), s.chunk, s.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	s.n -= k
	return k, nil
}

// TestSecurityWatchdogTransport: a request is cancelled when it makes no
// progress for the idle time (no answer, a body that stops), and only
// then: a slow but steady body, either way, or a caller slow between
// reads, is not cut.
func TestSecurityWatchdogTransport(t *testing.T) {
	t.Parallel()
	const idle = 200 * time.Millisecond
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/silent", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/body-stops", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 1000)))
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/slow-body", func(w http.ResponseWriter, r *http.Request) {
		for range 8 { // 8 × idle/4 = 2 × idle in all
			time.Sleep(idle / 4)
			w.Write([]byte(strings.Repeat("y", 100)))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/echo-length", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Write([]byte(strings.Repeat("z", int(n%1000))))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	host := strings.TrimPrefix(srv.URL, "http://")

	tests := []struct {
		name      string
		path      string
		body      func() io.Reader // a request body, or nil
		pause     time.Duration    // between the first read of the response and the rest
		wantStall bool
	}{
		{name: "no answer", path: "/silent", wantStall: true},
		{name: "body stops", path: "/body-stops", wantStall: true},
		{name: "slow but steady answer", path: "/slow-body"},
		{name: "slow but steady upload", path: "/echo-length",
			body: func() io.Reader { return &slowReader{n: 8 << 10, chunk: 1 << 10, every: idle / 4} }},
		{name: "caller slow between reads", path: "/slow-body", pause: 2 * idle},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr := &watchdogTransport{base: http.DefaultTransport.(*http.Transport).Clone(), idle: idle, host: host}
			a, ctx := newAttempt(t.Context())
			method := http.MethodGet
			var body io.Reader
			if tc.body != nil {
				method, body = http.MethodPut, tc.body()
			}
			req, err := http.NewRequestWithContext(ctx, method, srv.URL+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err == nil {
				buf := make([]byte, 10)
				_, err = io.ReadFull(resp.Body, buf)
				if err == nil {
					time.Sleep(tc.pause)
					_, err = io.Copy(io.Discard, resp.Body)
				}
				resp.Body.Close()
			}
			took := time.Since(start)
			var se *stallError
			if got := errors.As(err, &se); got != tc.wantStall {
				t.Fatalf("error %v after %v; want a stall: %v", err, took, tc.wantStall)
			}
			if !tc.wantStall {
				if err != nil {
					t.Errorf("error %v after %v, want none", err, took)
				}
				return
			}
			if took < idle || took > idle+time.Second {
				t.Errorf("the stall was noticed after %v, want about %v", took, idle)
			}
			if want := "no answer from " + host + " for 0.2 s"; se.Error() != want {
				t.Errorf("stall error %q, want %q", se, want)
			}
			if a.stalled() == nil || !errors.As(context.Cause(ctx), &se) {
				t.Errorf("the attempt was not ended by the stall: %v", context.Cause(ctx))
			}
		})
	}
}

// TestSecurityWatchdogAfterStall: once an attempt stalled, requests still
// made under it (minio-go aborting a multipart upload) fail at once
// without reaching the server; a request outside any attempt is cut all
// the same.
func TestSecurityWatchdogAfterStall(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	tr := &watchdogTransport{base: http.DefaultTransport.(*http.Transport).Clone(), idle: 100 * time.Millisecond, host: "h"}
	client := &http.Client{Transport: tr}
	do := func(ctx context.Context) (time.Duration, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		start := time.Now()
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return time.Since(start), err
	}
	a, ctx := newAttempt(t.Context())
	var se *stallError
	if _, err := do(ctx); !errors.As(err, &se) || a.stalled() == nil {
		t.Fatalf("first request: %v, want a stall", err)
	}
	cleanup := context.WithoutCancel(ctx) // as minio-go's abort does
	// Refused before it is sent (the server never sees it), rather than
	// left to stall again.
	if _, err := do(cleanup); !errors.As(err, &se) || hits.Load() != 1 {
		t.Errorf("request under the stalled attempt: %v with %d requests at the server, want a stall without sending it", err, hits.Load())
	}
	if _, err := do(t.Context()); !errors.As(err, &se) {
		t.Errorf("request outside an attempt: %v, want a stall", err)
	}
	if diff := cmp.Diff(int64(2), hits.Load()); diff != "" {
		t.Errorf("requests that reached the server (-want +got):\n%s", diff)
	}
}

func TestSecurityWaitMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    Progress
		want string
	}{
		{Progress{Op: "put", URI: "minio://b/k", Waiting: true, Retry: 3, Waited: 20 * time.Second}, "waiting for minio://b/k (retry 3, 20 s)"},
		{Progress{Op: "stat", URI: "s3://b/k/x", Waiting: true, Retry: 1, Waited: 1234 * time.Millisecond}, "waiting for s3://b/k/x (retry 1, 1.2 s)"},
	}
	for _, tc := range tests {
		if got := tc.p.WaitMessage(); got != tc.want {
			t.Errorf("WaitMessage() = %q, want %q", got, tc.want)
		}
	}
}
