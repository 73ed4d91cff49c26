package kfp_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/mlpipe/mlpipe/kfp"
	"github.com/mlpipe/mlpipe/kfp/kfptest"
)

func TestEnsureExperiment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		expName     string
		setup       func(s *kfptest.Server)
		wantCreated bool
		wantErr     string
		wantCreates int
	}{
		{name: "default name, created", expName: "", wantCreated: true, wantCreates: 1},
		{name: "exists", expName: "nightly", setup: func(s *kfptest.Server) { s.AddExperiment("nightly", "") }, wantCreates: 0},
		{name: "other names do not match", expName: "nightly", setup: func(s *kfptest.Server) { s.AddExperiment("nightly-2", "") }, wantCreated: true, wantCreates: 1},
		{name: "lost race: 409 then found", expName: "nightly",
			setup: func(s *kfptest.Server) {
				s.Inject(kfptest.RouteCreateExperiment, kfptest.Fault{Kind: kfptest.LostRace})
			}, wantCreates: 1},
		{name: "several match", expName: "dup",
			setup:   func(s *kfptest.Server) { s.AddExperiment("dup", ""); s.AddExperiment("dup", "") },
			wantErr: `2 experiments are named "dup"`},
		{name: "plus and percent survive the double unescaping", expName: "a+b 100%", wantCreated: true, wantCreates: 1},
		{name: "503 on create is an error", expName: "x",
			setup: func(s *kfptest.Server) {
				s.Inject(kfptest.RouteCreateExperiment, kfptest.Fault{Kind: kfptest.Unavailable})
			},
			wantErr: "503 Service Unavailable", wantCreates: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := kfptest.New(t, kfptest.Options{})
			if tt.setup != nil {
				tt.setup(srv)
			}
			c := newClient(t, srv, kfp.Options{})
			e, created, err := c.EnsureExperiment(t.Context(), tt.expName)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("EnsureExperiment: got %v, want an error containing %q", err, tt.wantErr)
				}
			} else {
				if err != nil {
					t.Fatalf("EnsureExperiment: %v", err)
				}
				want := tt.expName
				if want == "" {
					want = kfp.DefaultExperiment
				}
				if e.DisplayName != want || e.ExperimentID == "" || created != tt.wantCreated {
					t.Errorf("EnsureExperiment = %+v created %v, want %q created %v", e, created, want, tt.wantCreated)
				}
				// Asking again finds it.
				again, created2, err := c.EnsureExperiment(t.Context(), tt.expName)
				if err != nil || again.ExperimentID != e.ExperimentID || created2 {
					t.Errorf("second EnsureExperiment = %+v, %v, %v", again, created2, err)
				}
			}
			if n := srv.Calls(kfptest.RouteCreateExperiment); n != tt.wantCreates {
				t.Errorf("%d create calls, want %d", n, tt.wantCreates)
			}
		})
	}
}

func TestFilterEscaping(t *testing.T) {
	t.Parallel()
	srv := kfptest.New(t, kfptest.Options{})
	c := newClient(t, srv, kfp.Options{})
	for _, name := range []string{"plain", "a+b", "50%"} {
		if _, err := c.ListExperiments(t.Context(), kfp.ListOptions{Filter: kfp.Equals("display_name", name)}); err != nil {
			t.Fatalf("ListExperiments(%q): %v", name, err)
		}
	}
	reqs := srv.RequestsTo(kfptest.RouteListExperiments)
	// The plain filter is sent as is; the others escaped once more.
	if got := reqs[0].Query.Get("filter"); got != `{"predicates":[{"key":"display_name","operation":"EQUALS","string_value":"plain"}]}` {
		t.Errorf("plain filter sent as %s", got)
	}
	for _, r := range reqs[1:] {
		twice, err := url.QueryUnescape(r.Query.Get("filter"))
		if err != nil || !strings.HasPrefix(twice, `{"predicates"`) {
			t.Errorf("escaped filter %q unescapes to %q, %v", r.Query.Get("filter"), twice, err)
		}
	}
}

func TestUploadAndVersions(t *testing.T) {
	t.Parallel()
	srv := kfptest.New(t, kfptest.Options{})
	c := newClient(t, srv, kfp.Options{})
	file, err := kfp.PackageYAML(helloSpec(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PipelineByName(t.Context(), "hello"); !errors.Is(err, kfp.ErrNotFound) {
		t.Fatalf("PipelineByName before upload: got %v, want ErrNotFound", err)
	}
	p, err := c.UploadPipeline(t.Context(), kfp.Upload{Name: "hello", File: file})
	if err != nil {
		t.Fatalf("UploadPipeline: %v", err)
	}
	if p.PipelineID == "" || p.Name != "hello" {
		t.Fatalf("uploaded pipeline = %+v", p)
	}
	// The same name again: 409 in the upload handler's own error format.
	_, err = c.UploadPipeline(t.Context(), kfp.Upload{Name: "hello", File: file})
	if !errors.Is(err, kfp.ErrConflict) || !strings.Contains(err.Error(), "already exist") {
		t.Fatalf("second UploadPipeline: got %v, want a conflict", err)
	}
	found, err := c.PipelineByName(t.Context(), "hello")
	if err != nil || found.PipelineID != p.PipelineID {
		t.Fatalf("PipelineByName = %+v, %v", found, err)
	}
	first, err := c.LatestPipelineVersion(t.Context(), p.PipelineID)
	if err != nil {
		t.Fatalf("LatestPipelineVersion: %v", err)
	}
	var latest string
	for i := range 3 {
		v, err := c.UploadPipelineVersion(t.Context(), p.PipelineID, kfp.Upload{Name: "hello-v" + string(rune('2'+i)), File: file})
		if err != nil {
			t.Fatalf("UploadPipelineVersion: %v", err)
		}
		if v.PipelineVersionID == "" || v.PipelineSpec == nil {
			t.Errorf("uploaded version = %+v: want an id and the spec", v)
		}
		latest = v.PipelineVersionID
	}
	got, err := c.LatestPipelineVersion(t.Context(), p.PipelineID)
	if err != nil || got.PipelineVersionID != latest || got.PipelineVersionID == first.PipelineVersionID {
		t.Errorf("LatestPipelineVersion = %+v, %v, want %s", got, err, latest)
	}
	// A run from the reference without a version takes the latest.
	r, err := c.CreateRun(t.Context(), kfp.RunRequest{DisplayName: "ref", PipelineID: p.PipelineID, Parameters: map[string]any{"seed": 1}})
	if err != nil {
		t.Fatalf("CreateRun from a reference: %v", err)
	}
	if r.PipelineVersionReference == nil || r.PipelineVersionReference.PipelineVersionID != latest {
		t.Errorf("run reference = %+v, want version %s", r.PipelineVersionReference, latest)
	}
}

func TestUploadRejectsBadName(t *testing.T) {
	t.Parallel()
	srv := kfptest.New(t, kfptest.Options{})
	c := newClient(t, srv, kfp.Options{})
	spec := helloSpec(t)
	spec["pipelineInfo"] = map[string]any{"name": "Hello_World"}
	file, err := kfp.PackageYAML(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.UploadPipeline(t.Context(), kfp.Upload{Name: "hello", File: file})
	if kfp.StatusCode(err) != 400 || !strings.Contains(err.Error(), "Hello_World") {
		t.Errorf("UploadPipeline with a bad name: %v", err)
	}
	if err := kfp.CheckPipelineName("Hello_World"); err == nil {
		t.Error("CheckPipelineName(Hello_World): no error")
	}
	if err := kfp.CheckPipelineName("hello-world-2"); err != nil {
		t.Errorf("CheckPipelineName(hello-world-2): %v", err)
	}
}

func TestPipelineByNameFallsBackToList(t *testing.T) {
	t.Parallel()
	srv := kfptest.New(t, kfptest.Options{NoNamesEndpoint: true})
	c := newClient(t, srv, kfp.Options{})
	file, err := kfp.PackageYAML(helloSpec(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.UploadPipeline(t.Context(), kfp.Upload{Name: "hello", File: file})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.PipelineByName(t.Context(), "hello")
	if err != nil || got.PipelineID != p.PipelineID {
		t.Fatalf("PipelineByName = %+v, %v", got, err)
	}
	l := srv.RequestsTo(kfptest.RouteListPipelines)
	if len(l) != 1 || !strings.Contains(l[0].Query.Get("filter"), `"display_name"`) {
		t.Errorf("list requests %+v: want one filtered on display_name", l)
	}
}

func TestMultiUser(t *testing.T) {
	t.Parallel()
	srv := kfptest.New(t, kfptest.Options{MultiUser: true, Namespaces: []string{"team-a"}})

	// Without a namespace the server refuses experiment lookups.
	noNS := newClient(t, srv, kfp.Options{})
	if _, _, err := noNS.EnsureExperiment(t.Context(), "x"); kfp.StatusCode(err) != 400 {
		t.Errorf("EnsureExperiment without a namespace: got %v, want a 400", err)
	}
	// Someone else's namespace: 403.
	other := newClient(t, srv, kfp.Options{Namespace: "team-b"})
	if _, _, err := other.EnsureExperiment(t.Context(), "x"); !errors.Is(err, kfp.ErrPermissionDenied) {
		t.Errorf("EnsureExperiment in team-b: got %v, want permission denied", err)
	}

	c := newClient(t, srv, kfp.Options{Namespace: "team-a"})
	e, _, err := c.EnsureExperiment(t.Context(), "nightly")
	if err != nil {
		t.Fatalf("EnsureExperiment: %v", err)
	}
	if e.Namespace != "team-a" {
		t.Errorf("experiment namespace %q", e.Namespace)
	}
	// The run's namespace is its experiment's; it has none of its own.
	if _, err := c.CreateRun(t.Context(), kfp.RunRequest{DisplayName: "r", PipelineSpec: helloSpec(t), Parameters: map[string]any{"seed": 1}}); kfp.StatusCode(err) != 400 {
		t.Errorf("CreateRun without an experiment in multi-user mode: got %v, want a 400", err)
	}
	r, err := c.CreateRun(t.Context(), kfp.RunRequest{DisplayName: "r", ExperimentID: e.ExperimentID, PipelineSpec: helloSpec(t), Parameters: map[string]any{"seed": 1}})
	if err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	if r.ServiceAccount != "default-editor" {
		t.Errorf("service account %q", r.ServiceAccount)
	}
	// Listing by namespace sends it; listing by experiment does not.
	if _, err := c.ListRuns(t.Context(), "", kfp.ListOptions{}); err != nil {
		t.Fatalf("ListRuns by namespace: %v", err)
	}
	if _, err := noNS.ListRuns(t.Context(), "", kfp.ListOptions{}); kfp.StatusCode(err) != 400 {
		t.Errorf("ListRuns with neither namespace nor experiment: got %v, want a 400", err)
	}
	lists := srv.RequestsTo(kfptest.RouteListRuns)
	if got := lists[0].Query.Get("namespace"); got != "team-a" {
		t.Errorf("ListRuns namespace = %q", got)
	}
	// Uploads carry the namespace; a pipeline in the namespace is found there.
	file, err := kfp.PackageYAML(helloSpec(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.UploadPipeline(t.Context(), kfp.Upload{Name: "hello", File: file})
	if err != nil {
		t.Fatalf("UploadPipeline: %v", err)
	}
	if p.Namespace != "team-a" {
		t.Errorf("pipeline namespace %q", p.Namespace)
	}
	if _, err := noNS.PipelineByName(t.Context(), "hello"); !errors.Is(err, kfp.ErrNotFound) {
		t.Errorf("PipelineByName among shared pipelines: got %v, want not found", err)
	}
	if got, err := c.PipelineByName(t.Context(), "hello"); err != nil || got.PipelineID != p.PipelineID {
		t.Errorf("PipelineByName in team-a = %+v, %v", got, err)
	}
}
