package kfp_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mlpipe/mlpipe/kfp"
	"github.com/mlpipe/mlpipe/kfp/kfptest"
)

// answer is a canned HTTP answer.
type answer struct {
	status      int
	contentType string
	header      map[string]string
	body        string
}

func serve(t *testing.T, a answer) string {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		if a.contentType != "" {
			w.Header().Set("Content-Type", a.contentType)
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestErrorBodies(t *testing.T) {
	t.Parallel()
	type want struct {
		Status    int
		Code      int
		Message   string
		Detail    string
		Auth      bool
		Transient bool
	}
	tests := []struct {
		name     string
		answer   answer
		want     want
		is       error
		contains []string
	}{
		{
			name:   "google.rpc.Status",
			answer: answer{status: 400, contentType: "application/json", body: `{"code":3,"message":"Invalid input error: parameter(s) provided are not required by pipeline: x","details":[{"@type":"type.googleapis.com/google.rpc.Status","code":3,"message":"Failed to create a run: extra parameter x"}]}`},
			want:   want{Status: 400, Code: 3, Message: "Failed to create a run: extra parameter x", Detail: "Invalid input error: parameter(s) provided are not required by pipeline: x"},
		},
		{
			name:   "internal wraps a user mistake",
			answer: answer{status: 500, contentType: "application/json", body: `{"code":13,"message":"Failed to create a run due to error fetching manifest: unknown template format","details":[{"@type":"type.googleapis.com/google.rpc.Status","code":13,"message":"Internal Server Error"}]}`},
			want:   want{Status: 500, Code: 13, Message: "Failed to create a run due to error fetching manifest: unknown template format", Transient: true},
		},
		{
			name:   "legacy gateway",
			answer: answer{status: 404, contentType: "application/json", body: `{"error":"Run abc not found","code":5,"message":"Run abc not found","details":[]}`},
			want:   want{Status: 404, Code: 5, Message: "Run abc not found"},
			is:     kfp.ErrNotFound,
		},
		{
			name:   "legacy error only",
			answer: answer{status: 409, contentType: "application/json", body: `{"error":"experiment exists","code":6}`},
			want:   want{Status: 409, Code: 6, Message: "experiment exists"},
			is:     kfp.ErrConflict,
		},
		{
			name:   "upload handler",
			answer: answer{status: 400, contentType: "application/json", body: `{"error_message":"Failed to create a pipeline. Invalid input error: pipeline name is invalid","error_details":"InvalidInputError: name Foo_Bar"}`},
			want:   want{Status: 400, Message: "Failed to create a pipeline. Invalid input error: pipeline name is invalid", Detail: "InvalidInputError: name Foo_Bar"},
		},
		{
			// What the real server answers for a duplicate version name:
			// the headline only, and a Go stack trace as details, which is
			// logged at debug level and never shown.
			name: "upload handler with a stack trace",
			answer: answer{status: 409, contentType: "application/json", body: `{"error_message":"Failed to create a pipeline version","error_details":"Failed to create a pipeline version: ` +
				`\ngithub.com/kubeflow/pipelines/backend/src/common/util.NewAlreadyExistError\n\t/go/src/github.com/kubeflow/pipelines/backend/src/common/util/error.go:95\ngoroutine 1"}`},
			want: want{Status: 409, Message: "Failed to create a pipeline version"},
			is:   kfp.ErrConflict,
		},
		{
			name:   "upload handler, first line kept",
			answer: answer{status: 400, contentType: "application/json", body: `{"error_message":"Failed to create a pipeline","error_details":"Failed to create a pipeline: Invalid input error: the pipeline spec is invalid\ngithub.com/kubeflow/pipelines/backend/src/apiserver/server.go:12"}`},
			want:   want{Status: 400, Message: "Failed to create a pipeline", Detail: "Invalid input error: the pipeline spec is invalid"},
		},
		{
			name:   "plain text",
			answer: answer{status: 400, contentType: "text/plain; charset=utf-8", body: "Namespace is required for pipeline operations\n"},
			want:   want{Status: 400, Message: "Namespace is required for pipeline operations"},
		},
		{
			name:     "istio rbac",
			answer:   answer{status: 403, contentType: "text/plain", body: "RBAC: access denied"},
			want:     want{Status: 403, Message: "RBAC: access denied"},
			is:       kfp.ErrPermissionDenied,
			contains: []string{"permission denied at "},
		},
		{
			name:   "envoy",
			answer: answer{status: 503, contentType: "text/plain", body: "upstream connect error or disconnect/reset before headers"},
			want:   want{Status: 503, Message: "upstream connect error or disconnect/reset before headers", Transient: true},
		},
		{
			name:     "401 json",
			answer:   answer{status: 401, contentType: "application/json", header: map[string]string{"WWW-Authenticate": "Bearer"}, body: `{"code":16,"message":"User identity is empty in the request header","details":[]}`},
			want:     want{Status: 401, Code: 16, Message: "User identity is empty in the request header", Auth: true},
			is:       kfp.ErrAuthRequired,
			contains: []string{"authentication required at "},
		},
		{
			name:     "redirect to a login page",
			answer:   answer{status: 302, contentType: "text/html", header: map[string]string{"Location": "https://dex.example.com/dex/auth?client_id=x&state=SECRETSTATE"}, body: `<a href="/dex/auth">Found</a>`},
			want:     want{Status: 302, Auth: true},
			is:       kfp.ErrAuthRequired,
			contains: []string{"authentication required at ", "redirected (302) to https://dex.example.com/dex/auth"},
		},
		{
			name:     "html login page with 200",
			answer:   answer{status: 200, contentType: "text/html; charset=utf-8", body: kfptest.LoginPageHTML},
			want:     want{Status: 200, Message: "the answer is an HTML page (a login page?)", Detail: `page title "Log in to Your Account"`, Auth: true},
			is:       kfp.ErrAuthRequired,
			contains: []string{"authentication required at "},
		},
		{
			name:   "html without content type",
			answer: answer{status: 200, body: "<!DOCTYPE html><html><head><title>oauth2-proxy</title></head></html>"},
			want:   want{Status: 200, Message: "the answer is an HTML page (a login page?)", Detail: `page title "oauth2-proxy"`, Auth: true},
			is:     kfp.ErrAuthRequired,
		},
		{
			name:   "express 404: wrong prefix or kfp 1.x",
			answer: answer{status: 404, contentType: "text/html; charset=utf-8", body: "<!DOCTYPE html><html><body><pre>Cannot GET /pipeline/apis/v2beta1/runs/x</pre></body></html>"},
			want:   want{Status: 404, Message: "this address does not serve the KFP v2beta1 API (a wrong path prefix, or a KFP 1.x backend?)", Detail: "Cannot GET /pipeline/apis/v2beta1/runs/x"},
			is:     kfp.ErrNotFound,
		},
		{
			name:   "200 that is not json",
			answer: answer{status: 200, contentType: "text/plain", body: "hello"},
			want:   want{Status: 200, Message: "the answer is not the expected JSON: hello", Detail: "invalid character 'h' looking for beginning of value"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			host := serve(t, tt.answer)
			c, err := kfp.New(kfp.Options{Host: host})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.GetRun(t.Context(), "abc")
			var ae *kfp.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("GetRun: got %v (%T), want an *APIError", err, err)
			}
			got := want{Status: ae.StatusCode, Code: ae.Code, Message: ae.Message, Detail: ae.Detail, Auth: ae.Auth,
				Transient: kfp.IsTransient(err)}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("decoded error mismatch (-want +got):\n%s", d)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
			msg := err.Error()
			if !strings.Contains(msg, host) {
				t.Errorf("error %q does not name the host", msg)
			}
			if strings.Contains(msg, "github.com/") || strings.Contains(msg, "goroutine") {
				t.Errorf("error %q shows the server's stack trace", msg)
			}
			if strings.Contains(msg, "SECRETSTATE") {
				t.Errorf("error %q shows the redirect's query", msg)
			}
			for _, s := range tt.contains {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not contain %q", msg, s)
				}
			}
		})
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	t.Parallel()
	const token = "eyJhbGciOiJSUzI1NiJ9.secret-token-value"
	const cookie = "authservice_session=session-secret-42"
	// A badly behaved proxy that echoes the credentials in its error.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"code":7,"message":"denied for `+r.Header.Get("Authorization")+` with cookie `+r.Header.Get("Cookie")+`"}`)
	}))
	t.Cleanup(ts.Close)
	path := writeToken(t, t.TempDir(), token)
	c, err := kfp.New(kfp.Options{Host: ts.URL, TokenFile: path, Cookie: cookie})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetRun(t.Context(), "r1")
	if err == nil {
		t.Fatal("GetRun: no error")
	}
	for _, secret := range []string{token, "session-secret-42"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error shows a secret: %v", err)
		}
	}
	if !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("error %q: want the secrets replaced by [redacted]", err)
	}
}

func TestNetworkErrorNamesHost(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.NotFoundHandler())
	host := ts.URL
	ts.Close() // nothing listens there any more
	c, err := kfp.New(kfp.Options{Host: host})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Health(t.Context())
	var ne *kfp.NetworkError
	if !errors.As(err, &ne) || !kfp.IsTransient(err) {
		t.Fatalf("Health on a closed port: got %v, want a transient *NetworkError", err)
	}
	if !strings.Contains(err.Error(), "cannot reach KFP at "+host) {
		t.Errorf("error %q does not name the host", err)
	}
}

func TestFaultsFromFake(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind   kfptest.FaultKind
		status int
		is     error
	}{
		{kfptest.Unavailable, 503, nil},
		{kfptest.Unauthenticated, 401, kfp.ErrAuthRequired},
		{kfptest.LoginPage, 200, kfp.ErrAuthRequired},
		{kfptest.Redirect, 302, kfp.ErrAuthRequired},
		{kfptest.RBACDenied, 403, kfp.ErrPermissionDenied},
		{kfptest.EnvoyUnavailable, 503, nil},
	}
	for _, tt := range tests {
		srv := kfptest.New(t, kfptest.Options{})
		srv.Inject(kfptest.RouteListExperiments, kfptest.Fault{Kind: tt.kind})
		_, _, err := newClient(t, srv, kfp.Options{}).EnsureExperiment(t.Context(), "x")
		if got := kfp.StatusCode(err); got != tt.status {
			t.Errorf("fault %d: status %d (%v), want %d", tt.kind, got, err, tt.status)
		}
		if tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("fault %d: %v is not %v", tt.kind, err, tt.is)
		}
	}
}
