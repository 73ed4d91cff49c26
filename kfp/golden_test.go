package kfp_test

import (
	"encoding/json"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/mlpipe/mlpipe/kfp"
	"github.com/mlpipe/mlpipe/kfp/kfptest"
)

// The golden files in testdata hold the exact request bodies the client
// sends (normalised JSON); run go test ./kfp -update after a deliberate
// change.

func TestGoldenCreateRun(t *testing.T) {
	t.Parallel()
	platform := map[string]any{"platforms": map[string]any{"kubernetes": map[string]any{
		"deploymentSpec": map[string]any{"executors": map[string]any{"exec-say": map[string]any{
			"nodeSelector": map[string]any{"labels": map[string]any{"pool": "gpu"}}}}}}}}
	tests := []struct {
		name   string
		golden string
		req    func(spec map[string]any, pipelineID string) kfp.RunRequest
	}{
		{
			name:   "inline spec with typed parameters",
			golden: "create_run_inline.json",
			req: func(spec map[string]any, _ string) kfp.RunRequest {
				return kfp.RunRequest{
					DisplayName: "hello.json 2026-08-21 10-00-00", PipelineSpec: spec,
					Parameters: map[string]any{
						"who": "kfp", "count": int64(3), "rate": 0.25, "loud": true,
						"items": []any{int64(1), "two"}, "cfg": map[string]any{"k": "v"}, "seed": int64(7),
					},
					PipelineRoot: "s3://bucket/root",
				}
			},
		},
		{
			name:   "inline spec with a platform spec",
			golden: "create_run_platform.json",
			req: func(spec map[string]any, _ string) kfp.RunRequest {
				return kfp.RunRequest{DisplayName: "with platform", PipelineSpec: spec, PlatformSpec: platform,
					Parameters: map[string]any{"seed": 1}}
			},
		},
		{
			name:   "pipeline version reference",
			golden: "create_run_reference.json",
			req: func(_ map[string]any, pid string) kfp.RunRequest {
				return kfp.RunRequest{DisplayName: "from the registry", PipelineID: pid,
					Parameters: map[string]any{"seed": 2}, ServiceAccount: "runner"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := kfptest.New(t, kfptest.Options{})
			c := newClient(t, srv, kfp.Options{})
			spec := helloSpec(t)
			file, err := kfp.PackageYAML(spec, nil)
			if err != nil {
				t.Fatal(err)
			}
			p, err := c.UploadPipeline(t.Context(), kfp.Upload{Name: "hello", File: file})
			if err != nil {
				t.Fatalf("UploadPipeline: %v", err)
			}
			e, _, err := c.EnsureExperiment(t.Context(), "")
			if err != nil {
				t.Fatalf("EnsureExperiment: %v", err)
			}
			req := tt.req(spec, p.PipelineID)
			req.ExperimentID = e.ExperimentID
			run, err := c.CreateRun(t.Context(), req)
			if err != nil {
				t.Fatalf("CreateRun: %v", err)
			}
			if run.State != kfp.StateUnspecified {
				t.Errorf("new run state = %q, want it absent", run.State)
			}
			reqs := srv.RequestsTo(kfptest.RouteCreateRun)
			if len(reqs) != 1 {
				t.Fatalf("got %d create requests, want 1", len(reqs))
			}
			body := strings.ReplaceAll(string(reqs[0].Body), e.ExperimentID, "EXPERIMENT_ID")
			body = strings.ReplaceAll(body, p.PipelineID, "PIPELINE_ID")
			golden(t, tt.golden, []byte(body))
			if ct := reqs[0].Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}
}

func TestGoldenExperimentAndUploads(t *testing.T) {
	t.Parallel()
	srv := kfptest.New(t, kfptest.Options{MultiUser: true})
	c := newClient(t, srv, kfp.Options{Namespace: "team-a"})
	if _, _, err := c.EnsureExperiment(t.Context(), "nightly"); err != nil {
		t.Fatalf("EnsureExperiment: %v", err)
	}
	file, err := kfp.PackageYAML(helloSpec(t), map[string]any{"platforms": map[string]any{"kubernetes": map[string]any{}}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.UploadPipeline(t.Context(), kfp.Upload{Name: "hello", Description: "says hello", File: file})
	if err != nil {
		t.Fatalf("UploadPipeline: %v", err)
	}
	if _, err := c.UploadPipelineVersion(t.Context(), p.PipelineID, kfp.Upload{Name: "hello-v2", File: file}); err != nil {
		t.Fatalf("UploadPipelineVersion: %v", err)
	}

	var got []map[string]any
	for _, r := range srv.Requests() {
		rec := map[string]any{"method": r.Method, "path": strings.ReplaceAll(r.Path, p.PipelineID, "PIPELINE_ID")}
		q := map[string]string{}
		for k := range r.Query {
			q[k] = strings.ReplaceAll(r.Query.Get(k), p.PipelineID, "PIPELINE_ID")
		}
		rec["query"] = q
		switch {
		case r.Upload != nil:
			docs := strings.Split(string(r.Upload.Content), "---\n")
			var parsed []any
			for _, d := range docs {
				var v any
				if err := yaml.Unmarshal([]byte(d), &v); err != nil {
					t.Fatalf("uploaded YAML: %v", err)
				}
				parsed = append(parsed, v)
			}
			rec["upload"] = map[string]any{
				"filename":     r.Upload.FileName,
				"content_type": strings.SplitN(r.Header.Get("Content-Type"), ";", 2)[0],
				"documents":    len(parsed),
				"pipeline":     parsed[0].(map[string]any)["pipelineInfo"],
			}
		case len(r.Body) > 0:
			var v any
			if err := json.Unmarshal(r.Body, &v); err != nil {
				t.Fatal(err)
			}
			rec["body"] = v
		}
		got = append(got, rec)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "experiment_and_uploads.json", b)
}
