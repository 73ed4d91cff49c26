// Package ui serves the run history in a browser (mlpipe ui): the runs, a
// run's DAG with live task states, a task's attempts and log, artifacts
// rendered by type, the GPUs and comparisons of runs. Pages are rendered on
// the server with html/template; a small embedded script updates them
// (server-sent events, polling of a JSON endpoint). The only action beyond
// reading is cancelling a run, behind a POST with a CSRF token.
package ui

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mlpipe/mlpipe/contract"
	"github.com/mlpipe/mlpipe/metadata"
)

//go:embed assets templates
var files embed.FS

// History is the part of the run history the UI reads; *metadata.Store
// implements it.
type History interface {
	QueryRuns(ctx context.Context, pipeline, state string, limit, offset int) ([]*contract.RunRecord, int, error)
	Pipelines(ctx context.Context) ([]string, error)
	Run(ctx context.Context, id string) (*contract.RunRecord, error)
	Tasks(ctx context.Context, runID string) ([]*contract.TaskRecord, error)
	Attempts(ctx context.Context, runID, path string) ([]*contract.AttemptRecord, error)
	FindArtifact(ctx context.Context, uri string) (*metadata.Artifact, error)
	TaskInputs(ctx context.Context, runID, path string) ([]metadata.Input, error)
}

// ErrTooLarge is what OpenArtifact returns for an artifact larger than the
// limit it was given.
var ErrTooLarge = errors.New("artifact too large")

// GPUStatus is the GPUs of the machine now, for the GPU page.
type GPUStatus struct {
	Driver  string
	Mock    bool
	Error   string // why there are no GPUs (no NVML)
	Devices []GPUDevice
	// Waiting are the steps waiting for GPUs, oldest first (the lease
	// queue, of every user).
	Waiting []GPUWaiter
}

// GPUWaiter is a step waiting for GPUs.
type GPUWaiter struct {
	User, RunID, Task string
	Count             int
	Type              string
	Since             time.Time
}

// GPUDevice is one GPU (or MIG device) and who holds it.
type GPUDevice struct {
	Excluded                bool // the machine policy keeps it from mlpipe
	Index                   int
	UUID, Name              string
	MIG                     bool
	MemoryUsed, MemoryTotal int64
	Util, PowerWatts        float64 // -1 when not available
	Holder                  *GPUHolder
}

// GPUHolder is the mlpipe run and task that lease a GPU.
type GPUHolder struct {
	User, RunID, Task string
	PID               int
	Since             time.Time
}

// Options wire a Server to the history, the stores and the machine.
type Options struct {
	History History
	// OpenArtifact opens the content of an artifact the history recorded,
	// from the store that holds it, verified against its digest; an error
	// matching ErrTooLarge when it is larger than max bytes.
	OpenArtifact func(ctx context.Context, a *metadata.Artifact, max int64) (io.ReadCloser, error)
	// GPUs reads the GPUs and their holders (nil: the page says none).
	GPUs func(ctx context.Context) GPUStatus
	// Cancel stops a running run (nil: runs cannot be cancelled here).
	Cancel func(ctx context.Context, r *contract.RunRecord) error
	// RunJSON is a run as `mlpipe runs show --output json` prints it.
	RunJSON func(ctx context.Context, id string) (any, error)
	// Alive reports whether the process of a RUNNING run still lives
	// (nil: it does); a dead one is shown INTERRUPTED.
	Alive func(r *contract.RunRecord) bool
	// LoopbackOnly refuses requests whose Host header is not a loopback
	// name or address (a page of another site cannot reach the server
	// through DNS rebinding).
	LoopbackOnly bool
	// Poll is how often live pages read the history (default 250 ms).
	Poll time.Duration
	Log  *slog.Logger
}

// Server is the web UI, an http.Handler.
type Server struct {
	o     Options
	mux   *http.ServeMux
	pages map[string]*template.Template
	csrf  string
	gpus  *gpuHistory
}

// New makes the server.
func New(o Options) (*Server, error) {
	if o.History == nil {
		return nil, errors.New("ui: no history")
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	tok := make([]byte, 32)
	if _, err := rand.Read(tok); err != nil {
		return nil, err
	}
	s := &Server{o: o, mux: http.NewServeMux(), csrf: hex.EncodeToString(tok), pages: map[string]*template.Template{}, gpus: newGPUHistory()}
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html"))
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(files, n)
		if err != nil {
			return nil, fmt.Errorf("ui: template %s: %w", n, err)
		}
		s.pages[name] = t
	}
	assets, _ := fs.Sub(files, "assets")
	s.mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(assets)))
	s.mux.HandleFunc("GET /{$}", s.runsPage)
	s.mux.HandleFunc("GET /api/runs", s.runsAPI)
	s.mux.HandleFunc("GET /api/runs/{id}", s.runAPI)
	s.mux.HandleFunc("GET /runs/{id}", s.runPage)
	s.mux.HandleFunc("GET /runs/{id}/events", s.runEvents)
	s.mux.HandleFunc("GET /runs/{id}/timeline.svg", s.timelineSVG)
	s.mux.HandleFunc("GET /runs/{id}/tasks/{path...}", s.taskRoute)
	s.mux.HandleFunc("POST /runs/{id}/cancel", s.cancel)
	s.mux.HandleFunc("GET /artifacts", s.artifactPage)
	s.mux.HandleFunc("GET /artifacts/raw", s.artifactRaw)
	s.mux.HandleFunc("GET /gpus", s.gpuPage)
	s.mux.HandleFunc("GET /api/gpus", s.gpuAPI)
	s.mux.HandleFunc("GET /compare", s.comparePage)
	s.mux.HandleFunc("GET /bench", s.benchPage)
	return s, nil
}

// pageCSP is the Content-Security-Policy of every page but raw artifacts:
// no inline script or style, nothing from elsewhere.
const pageCSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none'"

// ServeHTTP implements http.Handler: security headers, the Host check, then
// the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	if r.URL.Path != "/artifacts/raw" {
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("X-Frame-Options", "SAMEORIGIN")
	}
	if s.o.LoopbackOnly && !loopbackHost(r.Host) {
		http.Error(w, "this server answers only to localhost names (it listens on a loopback address)", http.StatusMisdirectedRequest)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// loopbackHost reports whether a Host header names this machine's loopback.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// page is what every template gets: the title and the page's own data.
type page struct {
	Title string
	Nav   string
	Body  any
}

func (s *Server) render(w http.ResponseWriter, name, title, nav string, body any) {
	t := s.pages[name]
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout.html", page{Title: title, Nav: nav, Body: body}); err != nil {
		s.o.Log.Error("render page", "page", name, "err", err)
		http.Error(w, "cannot render the page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, b.String())
}

// fail answers an error as a small page (escaped), with its status.
func (s *Server) fail(w http.ResponseWriter, status int, msg string) {
	w.Header().Del("Content-Disposition")
	w.WriteHeader(status)
	t := s.pages["error"]
	_ = t.ExecuteTemplate(w, "layout.html", page{Title: http.StatusText(status), Body: msg})
}

// notFoundOr answers a history error: 404 for what is not there.
func (s *Server) notFoundOr(w http.ResponseWriter, err error) {
	if errors.Is(err, metadata.ErrNotFound) {
		s.fail(w, http.StatusNotFound, err.Error())
		return
	}
	s.fail(w, http.StatusInternalServerError, err.Error())
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// state is a run's state for people: a RUNNING run whose process died is
// INTERRUPTED.
func (s *Server) state(r *contract.RunRecord) contract.State {
	if r.State == contract.Running && s.o.Alive != nil && !s.o.Alive(r) {
		return "INTERRUPTED"
	}
	return r.State
}

// live reports whether a run may still change.
func (s *Server) live(r *contract.RunRecord) bool {
	switch r.State {
	case contract.Running, contract.Pending:
		// A run whose mlpipe is gone changes no more (its streams end).
		return s.o.Alive == nil || s.o.Alive(r)
	}
	return false
}

// checkCSRF accepts a state-changing request only with the server's token
// and from a page of this server: a browser that says where the request
// comes from (Sec-Fetch-Site, Origin) must say this site.
func (s *Server) checkCSRF(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return false
	}
	// With Referrer-Policy: no-referrer, browsers send "Origin: null" with
	// a same-origin form; a real origin must be this host.
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	tok := r.PostFormValue("csrf")
	return len(tok) == len(s.csrf) && subtle.ConstantTimeCompare([]byte(tok), []byte(s.csrf)) == 1
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if !s.checkCSRF(r) {
		s.fail(w, http.StatusForbidden, "the request did not come from this server's page (missing or wrong CSRF token, or another origin)")
		return
	}
	run, err := s.o.History.Run(r.Context(), r.PathValue("id"))
	if err != nil {
		s.notFoundOr(w, err)
		return
	}
	switch {
	case s.o.Cancel == nil:
		s.fail(w, http.StatusNotImplemented, "this server cannot cancel runs")
		return
	case !s.live(run):
		s.fail(w, http.StatusConflict, fmt.Sprintf("run %s is %s, not running", run.ID, s.state(run)))
		return
	}
	if err := s.o.Cancel(r.Context(), run); err != nil {
		s.fail(w, http.StatusConflict, "cannot cancel run "+run.ID+": "+err.Error())
		return
	}
	http.Redirect(w, r, "/runs/"+url.PathEscape(run.ID), http.StatusSeeOther)
}
