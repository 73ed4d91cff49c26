package kfp_test

import (
	"context"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlpipe/mlpipe/kfp"
	"github.com/mlpipe/mlpipe/kfp/kfptest"
)

func TestNormalizeHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "localhost:8888", want: "https://localhost:8888"},
		{in: "http://localhost:8888", want: "http://localhost:8888"},
		{in: "http://localhost:8888/", want: "http://localhost:8888"},
		{in: "HTTPS://kubeflow.example.com/pipeline/", want: "https://kubeflow.example.com/pipeline"},
		{in: "https://kubeflow.example.com/pipeline//", want: "https://kubeflow.example.com/pipeline"},
		{in: "https://kubeflow.example.com//pipeline", want: "https://kubeflow.example.com/pipeline"},
		{in: "kubeflow.example.com/pipeline", want: "https://kubeflow.example.com/pipeline"},
		{in: "  http://10.0.0.1:8080  ", want: "http://10.0.0.1:8080"},
		{in: "https://h/api/v1/namespaces/kubeflow/services/ml-pipeline:http/proxy/", want: "https://h/api/v1/namespaces/kubeflow/services/ml-pipeline:http/proxy"},
		{in: "", wantErr: true},
		{in: "ftp://host", wantErr: true},
		{in: "https://user:secret@host", wantErr: true},
		{in: "https://host/pipeline?x=1", wantErr: true},
		{in: "http://", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := kfp.NormalizeHost(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("NormalizeHost(%q) = %v, want an error", tt.in, u)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("error shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NormalizeHost(%q): %v", tt.in, err)
			}
			if got := u.String(); got != tt.want {
				t.Errorf("NormalizeHost(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNewRejectsBadCAFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{notPEM, filepath.Join(dir, "missing.pem")} {
		_, err := kfp.New(kfp.Options{Host: "https://kfp.example.com", CAFile: f})
		var ie *kfp.InputError
		if !errors.As(err, &ie) {
			t.Errorf("New with CA file %s: got %v, want an *InputError", f, err)
		}
	}
}

func TestPathPrefixKept(t *testing.T) {
	t.Parallel()
	srv := kfptest.New(t, kfptest.Options{BasePath: "/pipeline"})
	for _, host := range []string{srv.URL(), srv.URL() + "/", srv.URL() + "//"} {
		c := newClient(t, srv, kfp.Options{Host: host})
		if _, err := c.Health(t.Context()); err != nil {
			t.Fatalf("Health via %s: %v", host, err)
		}
		if _, _, err := c.EnsureExperiment(t.Context(), "Default"); err != nil {
			t.Fatalf("EnsureExperiment via %s: %v", host, err)
		}
	}
	for _, r := range srv.Requests() {
		if !strings.HasPrefix(r.Path, "/pipeline/apis/v2beta1/") || strings.Contains(r.Path, "//") {
			t.Errorf("request path %q: want /pipeline/apis/v2beta1/... without a double slash", r.Path)
		}
	}
	// Without the prefix the fake (like the Istio route) has nothing there.
	c := newClient(t, srv, kfp.Options{Host: srv.RootURL()})
	if _, err := c.Health(t.Context()); kfp.StatusCode(err) != 404 || !strings.Contains(err.Error(), "path prefix") {
		t.Errorf("Health without the prefix: got %v, want a 404 with a hint on the path prefix", err)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    kfptest.Options
		want    kfp.Health
		wantErr error
	}{
		{name: "api server", opts: kfptest.Options{},
			want: kfp.Health{Version: "2.17.0", CommitSHA: "fake", PipelineStore: "database"}},
		{name: "api server multi-user", opts: kfptest.Options{MultiUser: true},
			want: kfp.Health{MultiUser: true, Version: "2.17.0", CommitSHA: "fake", PipelineStore: "database"}},
		{name: "ui", opts: kfptest.Options{Healthz: kfptest.HealthzUI, MultiUser: true},
			want: kfp.Health{MultiUser: true, Version: "2.17.0", CommitSHA: "fake", PipelineStore: "database", ViaUI: true}},
		{name: "ui without api server", opts: kfptest.Options{Healthz: kfptest.HealthzUI, APIServerNotReady: true},
			wantErr: kfp.ErrUnhealthy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := kfptest.New(t, tt.opts)
			h, err := newClient(t, srv, kfp.Options{}).Health(t.Context())
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Health: got %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), srv.URL()) {
					t.Errorf("error %q does not name the host", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Health: %v", err)
			}
			if *h != tt.want {
				t.Errorf("Health = %+v, want %+v", *h, tt.want)
			}
		})
	}
}

func TestTokenFileRereadOnEveryRequest(t *testing.T) {
	t.Parallel()
	srv := kfptest.New(t, kfptest.Options{RequireBearer: "token-one"})
	dir := t.TempDir()
	path := writeToken(t, dir, "token-one")
	c := newClient(t, srv, kfp.Options{TokenFile: path})
	if _, err := c.ListRuns(t.Context(), "", kfp.ListOptions{}); err != nil {
		t.Fatalf("ListRuns with the first token: %v", err)
	}
	// The kubelet rotates the token; the server only takes the new one.
	srv.SetBearer("token-two")
	writeToken(t, dir, "token-two")
	if _, err := c.ListRuns(t.Context(), "", kfp.ListOptions{}); err != nil {
		t.Fatalf("ListRuns after the rotation: %v", err)
	}
	reqs := srv.RequestsTo(kfptest.RouteListRuns)
	if len(reqs) != 2 {
		t.Fatalf("got %d list requests, want 2", len(reqs))
	}
	for i, want := range []string{"Bearer token-one", "Bearer token-two"} {
		if got := reqs[i].Header.Get("Authorization"); got != want {
			t.Errorf("request %d Authorization = %q, want %q", i, got, want)
		}
	}
	// A stale token: 401, and neither the error nor its chain shows it.
	srv.SetBearer("token-three")
	_, err := c.ListRuns(t.Context(), "", kfp.ListOptions{})
	if !errors.Is(err, kfp.ErrAuthRequired) || kfp.StatusCode(err) != 401 {
		t.Fatalf("ListRuns with a stale token: got %v, want a 401 authentication error", err)
	}
	if strings.Contains(err.Error(), "token-two") {
		t.Errorf("error shows the token: %v", err)
	}
	if !strings.Contains(err.Error(), "authentication required at "+srv.URL()) {
		t.Errorf("error %q does not say authentication is required at the host", err)
	}
}

func TestCookieAndUserIDHeaders(t *testing.T) {
	t.Parallel()
	srv := kfptest.New(t, kfptest.Options{AcceptCookie: "authservice_session=abc123"})
	c := newClient(t, srv, kfp.Options{Cookie: "authservice_session=abc123", UserID: "user@example.com"})
	if _, err := c.ListRuns(t.Context(), "", kfp.ListOptions{}); err != nil {
		t.Fatalf("ListRuns with a cookie: %v", err)
	}
	h := srv.RequestsTo(kfptest.RouteListRuns)[0].Header
	if got := h.Get("Cookie"); got != "authservice_session=abc123" {
		t.Errorf("Cookie = %q", got)
	}
	if got := h.Get("kubeflow-userid"); got != "user@example.com" {
		t.Errorf("kubeflow-userid = %q", got)
	}
	if got := h.Get("Authorization"); got != "" {
		t.Errorf("Authorization = %q, want none", got)
	}
}

func TestMissingTokenFile(t *testing.T) {
	t.Parallel()
	srv := kfptest.New(t, kfptest.Options{})
	c := newClient(t, srv, kfp.Options{TokenFile: filepath.Join(t.TempDir(), "nope")})
	_, err := c.GetRun(t.Context(), "x")
	if err == nil || !strings.Contains(err.Error(), "token file") {
		t.Fatalf("GetRun with a missing token file: got %v, want a token file error", err)
	}
	if len(srv.Requests()) != 0 {
		t.Errorf("a request went out without its token")
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	srv := kfptest.New(t, kfptest.Options{TLS: true})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		opts    kfp.Options
		wantErr bool
	}{
		{name: "verified by default", opts: kfp.Options{}, wantErr: true},
		{name: "trusted CA file", opts: kfp.Options{CAFile: ca}},
		{name: "verification off", opts: kfp.Options{InsecureSkipVerify: true}},
	}
	for _, tt := range tests {
		tt.opts.Host = srv.URL()
		c, err := kfp.New(tt.opts)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Health(t.Context())
		if tt.wantErr {
			var ne *kfp.NetworkError
			if !errors.As(err, &ne) || !strings.Contains(err.Error(), "certificate") {
				t.Errorf("%s: got %v, want a certificate error", tt.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	srv := kfptest.New(t, kfptest.Options{})
	srv.Inject(kfptest.RouteHealthz, kfptest.Fault{Kind: kfptest.Delay, Delay: time.Second})
	c := newClient(t, srv, kfp.Options{ReadTimeout: 20 * time.Millisecond})
	_, err := c.Health(t.Context())
	var ne *kfp.NetworkError
	if !errors.As(err, &ne) || !strings.Contains(err.Error(), "no answer within 20ms") {
		t.Fatalf("Health on a slow server: got %v, want a timeout", err)
	}
}

func TestWaitRunStopsOnCancel(t *testing.T) {
	t.Parallel()
	srv := kfptest.New(t, kfptest.Options{RunScript: []string{"", "RUNNING"}})
	c := newClient(t, srv, kfp.Options{})
	r := startRun(t, c)
	ctx, cancel := context.WithCancel(t.Context())
	_, err := c.WaitRun(ctx, r.RunID, kfp.WaitOptions{Interval: time.Millisecond,
		OnChange: func(r *kfp.Run) {
			if r.State == kfp.StateRunning {
				cancel()
			}
		}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitRun after cancel: got %v, want context.Canceled", err)
	}
}
