// Package kfptest is an in-process fake of the Kubeflow Pipelines API
// server (REST v2beta1) for tests, built from the contract in
// docs/kfp-api.md §5 and not from KFP's code.
//
// It is strict where a real server is strict, so that tests fail on request
// shapes a cluster would reject: bodies are decoded with unknown fields
// disallowed (a wrapped {"run": ...} body is a 400), run parameters are
// checked against the spec's inputs, uploads must be multipart with an
// "uploadfile" part. It answers the way real servers do: snake_case, zero
// values omitted (no "state" while a run is unspecified), int64 values as
// strings, RFC 3339 times, finished_at at the Unix epoch for unfinished
// runs, 200 for creates, and both error styles. Run states follow scripts;
// faults (503, 401, login pages, redirects, RBAC denials, delays, lost
// races) can be injected per route; every request is recorded.
package kfptest

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// ErrorStyle selects the JSON error shape of the gateway endpoints.
type ErrorStyle int

const (
	// ErrorsV2 is google.rpc.Status (new servers): {code, message, details}.
	ErrorsV2 ErrorStyle = iota
	// ErrorsLegacy is grpc-gateway v1's {error, code, message, details}.
	ErrorsLegacy
)

// HealthzShape selects who answers healthz.
type HealthzShape int

const (
	// HealthzAPI is the API server's own answer.
	HealthzAPI HealthzShape = iota
	// HealthzUI is the KFP UI's answer (camelCase, apiServerReady).
	HealthzUI
)

// Options configure a Server. The zero value is a single-user server with
// no auth, strict decoding and the default run script.
type Options struct {
	// BasePath is "" or a prefix such as "/pipeline" that every API path
	// must start with.
	BasePath string
	// MultiUser makes namespaces and experiment ids mandatory where the
	// real multi-user server requires them.
	MultiUser bool
	// Namespaces, when set, are the only namespaces the caller may use
	// (others get 403, or 400 on uploads as the real upload handler does).
	Namespaces []string
	// RequireBearer, AcceptCookie and AcceptUserID turn authentication on:
	// a request must carry "Authorization: Bearer RequireBearer", the Cookie
	// header AcceptCookie, or any kubeflow-userid header. Healthz is exempt.
	RequireBearer string
	AcceptCookie  string
	AcceptUserID  bool
	// ErrorStyle of the JSON endpoints.
	ErrorStyle ErrorStyle
	// AllowUnknownFields accepts unknown body fields (old servers).
	AllowUnknownFields bool
	// Healthz selects the healthz shape; APIServerNotReady makes the UI
	// report apiServerReady false.
	Healthz           HealthzShape
	APIServerNotReady bool
	// RunScript is the state sequence of new runs: CreateRun answers with
	// the first, each GetRun moves one step further and then stays on the
	// last. "" is the unspecified state (no "state" field). Default: "",
	// PENDING, RUNNING, SUCCEEDED.
	RunScript []string
	// TerminateTo is the state a terminated run reaches after CANCELING
	// (default CANCELED).
	TerminateTo string
	// RequireNamespaceForPipelines refuses uploads without a namespace in
	// multi-user mode (REQUIRE_NAMESPACE_FOR_PIPELINES).
	RequireNamespaceForPipelines bool
	// NoNamesEndpoint makes GET /pipelines/names/{name} unknown, as on old
	// servers.
	NoNamesEndpoint bool
	// TLS serves HTTPS with a self-signed certificate (see Certificate).
	TLS bool
}

// Route names an endpoint, for faults and assertions.
type Route string

// The routes of the fake.
const (
	RouteHealthz          Route = "GET /healthz"
	RouteUploadPipeline   Route = "POST /pipelines/upload"
	RouteUploadVersion    Route = "POST /pipelines/upload_version"
	RouteCreatePipeline   Route = "POST /pipelines"
	RouteListPipelines    Route = "GET /pipelines"
	RoutePipelineByName   Route = "GET /pipelines/names/{name}"
	RouteGetPipeline      Route = "GET /pipelines/{id}"
	RouteDeletePipeline   Route = "DELETE /pipelines/{id}"
	RouteListVersions     Route = "GET /pipelines/{id}/versions"
	RouteGetVersion       Route = "GET /pipelines/{id}/versions/{vid}"
	RouteCreateExperiment Route = "POST /experiments"
	RouteListExperiments  Route = "GET /experiments"
	RouteGetExperiment    Route = "GET /experiments/{id}"
	RouteCreateRun        Route = "POST /runs"
	RouteListRuns         Route = "GET /runs"
	RouteGetRun           Route = "GET /runs/{id}"
	RouteTerminateRun     Route = "POST /runs/{id}:terminate"
	RouteRetryRun         Route = "POST /runs/{id}:retry"
)

// FaultKind is what an injected fault answers.
type FaultKind int

// Fault kinds.
const (
	// Unavailable: 503, google.rpc.Status code 14 (Kubernetes timeout).
	Unavailable FaultKind = iota + 1
	// Unauthenticated: 401, code 16, with WWW-Authenticate.
	Unauthenticated
	// LoginPage: 200 text/html, a login page (a proxy that followed a
	// redirect itself).
	LoginPage
	// Redirect: 302 to a Dex login URL.
	Redirect
	// RBACDenied: 403 text/plain "RBAC: access denied" (Istio).
	RBACDenied
	// EnvoyUnavailable: 503 text/plain from Envoy.
	EnvoyUnavailable
	// Delay: wait Fault.Delay, then answer normally.
	Delay
	// LostRace: do the work, then answer 409 as if a concurrent request had
	// done it first.
	LostRace
)

// Fault is injected into one route's answers.
type Fault struct {
	Kind FaultKind
	// Call is the 1-based call of the route it hits; 0 hits every call.
	Call  int
	Delay time.Duration
}

// Request is a recorded request.
type Request struct {
	Route    Route // "" when no route matched
	Method   string
	Path     string // as received, escaped
	RawQuery string
	Query    url.Values
	Header   http.Header
	Body     []byte
	// Upload is the "uploadfile" part of a multipart upload.
	Upload *UploadedFile
}

// UploadedFile is the file part of an upload.
type UploadedFile struct {
	FileName string
	Content  []byte
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	opts Options
	ts   *httptest.Server

	mu          sync.Mutex
	bearer      string
	seq         int
	clock       time.Time
	pipelines   []*pipeline
	versions    []*version
	experiments []*experiment
	runs        []*run
	requests    []Request
	calls       map[Route]int
	faults      map[Route][]Fault
	scripts     [][]string
}

// New starts a fake server, closed when the test ends.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	s := NewServer(o)
	t.Cleanup(s.Close)
	return s
}

// NewServer starts a fake server; Close stops it.
func NewServer(o Options) *Server {
	if len(o.RunScript) == 0 {
		o.RunScript = []string{"", "PENDING", "RUNNING", "SUCCEEDED"}
	}
	if o.TerminateTo == "" {
		o.TerminateTo = "CANCELED"
	}
	o.BasePath = strings.TrimRight(o.BasePath, "/")
	s := &Server{
		opts:   o,
		bearer: o.RequireBearer,
		clock:  time.Date(2026, 8, 21, 10, 0, 0, 0, time.UTC),
		calls:  map[Route]int{},
		faults: map[Route][]Fault{},
	}
	if o.TLS {
		s.ts = httptest.NewTLSServer(s)
	} else {
		s.ts = httptest.NewServer(s)
	}
	return s
}

// Certificate is the server's certificate when it serves TLS, else nil.
func (s *Server) Certificate() *x509.Certificate { return s.ts.Certificate() }

// Close stops the server.
func (s *Server) Close() { s.ts.Close() }

// URL is the address clients use as their host: the server's root plus
// BasePath.
func (s *Server) URL() string { return s.ts.URL + s.opts.BasePath }

// RootURL is the server's root, without BasePath.
func (s *Server) RootURL() string { return s.ts.URL }

// SetBearer changes the accepted bearer token (a rotation).
func (s *Server) SetBearer(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bearer = tok
}

// Inject adds a fault to a route.
func (s *Server) Inject(r Route, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[r] = append(s.faults[r], f)
}

// ScriptNextRun sets the state script of the next run created (queued:
// each call scripts one more run).
func (s *Server) ScriptNextRun(states ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts = append(s.scripts, states)
}

// Requests returns the recorded requests, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// RequestsTo returns the recorded requests of one route.
func (s *Server) RequestsTo(r Route) []Request {
	var out []Request
	for _, q := range s.Requests() {
		if q.Route == r {
			out = append(out, q)
		}
	}
	return out
}

// Calls is how many requests a route received.
func (s *Server) Calls(r Route) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[r]
}

// ServeHTTP routes one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 40<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	route, params, known := s.match(r)
	rec := Request{Route: route, Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery,
		Query: r.URL.Query(), Header: r.Header.Clone(), Body: body}
	if route == RouteUploadPipeline || route == RouteUploadVersion {
		rec.Upload = readUpload(r, body)
	}
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	var fault *Fault
	if route != "" {
		s.calls[route]++
		n := s.calls[route]
		for _, f := range s.faults[route] {
			if f.Call == 0 || f.Call == n {
				fault = &f
				break
			}
		}
	}
	s.mu.Unlock()
	switch {
	case route == "" && known:
		s.rpcError(w, http.StatusNotImplemented, 12, "", "Method Not Allowed")
		return
	case route == "":
		s.rpcError(w, http.StatusNotFound, 5, "", "Not Found")
		return
	}
	if fault != nil && s.fault(w, r, *fault, route, params) {
		return
	}
	if route != RouteHealthz && !s.authenticated(r) {
		w.Header().Set("WWW-Authenticate", "Bearer realm=\"kfp\"")
		s.rpcError(w, http.StatusUnauthorized, 16, "Unauthenticated",
			"Failed to authorize with API: Unauthenticated: User identity is empty in the request header")
		return
	}
	s.serve(w, r, route, params)
}

// serve runs a route's handler under the lock.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, route Route, p []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch route {
	case RouteHealthz:
		s.healthz(w)
	case RouteUploadPipeline:
		s.uploadPipeline(w, r)
	case RouteUploadVersion:
		s.uploadVersion(w, r)
	case RouteCreatePipeline:
		s.createPipeline(w, r)
	case RouteDeletePipeline:
		s.deletePipeline(w, p[0])
	case RouteListPipelines:
		s.listPipelines(w, r)
	case RoutePipelineByName:
		s.pipelineByName(w, r, p[0])
	case RouteGetPipeline:
		s.getPipeline(w, p[0])
	case RouteListVersions:
		s.listVersions(w, r, p[0])
	case RouteGetVersion:
		s.getVersion(w, p[0], p[1])
	case RouteCreateExperiment:
		s.createExperiment(w, r)
	case RouteListExperiments:
		s.listExperiments(w, r)
	case RouteGetExperiment:
		s.getExperiment(w, r, p[0])
	case RouteCreateRun:
		s.createRun(w, r)
	case RouteListRuns:
		s.listRuns(w, r)
	case RouteGetRun:
		s.getRun(w, r, p[0])
	case RouteTerminateRun:
		s.terminateRun(w, r, p[0])
	case RouteRetryRun:
		s.retryRun(w, r, p[0])
	}
}

// match finds the route of a request. known reports a path that exists
// with another method.
func (s *Server) match(r *http.Request) (route Route, params []string, known bool) {
	prefix := s.opts.BasePath + "/apis/v2beta1/"
	p := r.URL.EscapedPath()
	if !strings.HasPrefix(p, prefix) {
		return "", nil, false
	}
	var segs []string
	for _, e := range strings.Split(strings.TrimPrefix(p, prefix), "/") {
		u, err := url.PathUnescape(e)
		if err != nil || u == "" {
			return "", nil, false
		}
		segs = append(segs, u)
	}
	get, post := r.Method == http.MethodGet, r.Method == http.MethodPost
	pick := func(ok bool, rt Route, ps ...string) (Route, []string, bool) {
		if ok {
			return rt, ps, true
		}
		return "", nil, true
	}
	switch {
	case len(segs) == 1 && segs[0] == "healthz":
		return pick(get, RouteHealthz)
	case len(segs) == 1 && segs[0] == "pipelines":
		switch {
		case get:
			return RouteListPipelines, nil, true
		case post:
			return RouteCreatePipeline, nil, true
		}
		return "", nil, true
	case len(segs) == 2 && segs[0] == "pipelines" && post && segs[1] == "upload":
		return RouteUploadPipeline, nil, true
	case len(segs) == 2 && segs[0] == "pipelines" && post && segs[1] == "upload_version":
		return RouteUploadVersion, nil, true
	case len(segs) == 2 && segs[0] == "pipelines":
		if r.Method == http.MethodDelete {
			return RouteDeletePipeline, []string{segs[1]}, true
		}
		return pick(get, RouteGetPipeline, segs[1])
	case len(segs) == 3 && segs[0] == "pipelines" && segs[1] == "names" && !s.opts.NoNamesEndpoint:
		return pick(get, RoutePipelineByName, segs[2])
	case len(segs) == 3 && segs[0] == "pipelines" && segs[2] == "versions":
		return pick(get, RouteListVersions, segs[1])
	case len(segs) == 4 && segs[0] == "pipelines" && segs[2] == "versions":
		return pick(get, RouteGetVersion, segs[1], segs[3])
	case len(segs) == 1 && segs[0] == "experiments":
		switch {
		case get:
			return RouteListExperiments, nil, true
		case post:
			return RouteCreateExperiment, nil, true
		}
		return "", nil, true
	case len(segs) == 2 && segs[0] == "experiments":
		return pick(get, RouteGetExperiment, segs[1])
	case len(segs) == 1 && segs[0] == "runs":
		switch {
		case get:
			return RouteListRuns, nil, true
		case post:
			return RouteCreateRun, nil, true
		}
		return "", nil, true
	case len(segs) == 2 && segs[0] == "runs":
		if id, ok := strings.CutSuffix(segs[1], ":terminate"); ok {
			return pick(post, RouteTerminateRun, id)
		}
		if id, ok := strings.CutSuffix(segs[1], ":retry"); ok {
			return pick(post, RouteRetryRun, id)
		}
		return pick(get, RouteGetRun, segs[1])
	}
	return "", nil, false
}

// authenticated checks the credentials when authentication is on.
func (s *Server) authenticated(r *http.Request) bool {
	s.mu.Lock()
	bearer := s.bearer
	s.mu.Unlock()
	if bearer == "" && s.opts.AcceptCookie == "" && !s.opts.AcceptUserID {
		return true
	}
	if bearer != "" {
		scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if ok && strings.EqualFold(scheme, "Bearer") && tok == bearer {
			return true
		}
	}
	if c := s.opts.AcceptCookie; c != "" && r.Header.Get("Cookie") == c {
		return true
	}
	return s.opts.AcceptUserID && r.Header.Get("kubeflow-userid") != ""
}

// LoginPageHTML is the page the LoginPage fault serves.
const LoginPageHTML = `<!DOCTYPE html>
<html><head><title>Log in to Your Account</title></head>
<body><form method="post" action="/dex/auth/local/login"><input name="login"><input name="password" type="password"></form></body></html>
`

// fault answers with an injected fault; false means "answer normally".
func (s *Server) fault(w http.ResponseWriter, r *http.Request, f Fault, route Route, p []string) bool {
	switch f.Kind {
	case Unavailable:
		s.rpcError(w, http.StatusServiceUnavailable, 14, "Service unavailable, try again later",
			"Failed to create Kubernetes resource: the server is currently unable to handle the request (try again later)")
	case Unauthenticated:
		w.Header().Set("WWW-Authenticate", "Bearer realm=\"kfp\"")
		s.rpcError(w, http.StatusUnauthorized, 16, "Unauthenticated",
			"Failed to authorize with API: Unauthenticated: User identity is empty in the request header")
	case LoginPage:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, LoginPageHTML)
	case Redirect:
		w.Header().Set("Location", "/dex/auth?client_id=kubeflow-oidc-authservice&redirect_uri=%2Flogin%2Foidc&state=MTcyNzI0OTk3NnxFd3dBRU")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusFound)
		io.WriteString(w, `<a href="/dex/auth">Found</a>.`)
	case RBACDenied:
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "RBAC: access denied")
	case EnvoyUnavailable:
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "upstream connect error or disconnect/reset before headers. reset reason: connection failure")
	case Delay:
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
		}
		return false
	case LostRace:
		s.serve(httptest.NewRecorder(), r, route, p)
		s.rpcError(w, http.StatusConflict, 6, "Already exists", "Failed to create: the resource already exists (a concurrent request created it)")
	default:
		s.rpcError(w, http.StatusInternalServerError, 13, "", fmt.Sprintf("kfptest: unknown fault kind %d", f.Kind))
	}
	return true
}
