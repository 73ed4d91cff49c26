package ui

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlpipe/mlpipe/contract"
	"github.com/mlpipe/mlpipe/metadata"
)

// fakeHistory is a History in memory whose records tests change.
type fakeHistory struct {
	mu        sync.Mutex
	runs      []*contract.RunRecord // oldest first
	tasks     map[string][]*contract.TaskRecord
	attempts  map[string][]*contract.AttemptRecord
	artifacts map[string]*metadata.Artifact
	inputs    map[string][]metadata.Input
}

func newFake() *fakeHistory {
	return &fakeHistory{tasks: map[string][]*contract.TaskRecord{}, attempts: map[string][]*contract.AttemptRecord{},
		artifacts: map[string]*metadata.Artifact{}, inputs: map[string][]metadata.Input{}}
}

func (f *fakeHistory) QueryRuns(_ context.Context, pipeline, state string, limit, offset int) ([]*contract.RunRecord, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var match []*contract.RunRecord
	for i := len(f.runs) - 1; i >= 0; i-- {
		r := f.runs[i]
		if (pipeline == "" || r.Pipeline == pipeline) && (state == "" || string(r.State) == state) {
			cp := *r
			match = append(match, &cp)
		}
	}
	total := len(match)
	match = match[min(offset, len(match)):]
	return match[:min(limit, len(match))], total, nil
}

func (f *fakeHistory) Pipelines(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.runs {
		if !slices.Contains(out, r.Pipeline) {
			out = append(out, r.Pipeline)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (f *fakeHistory) Run(_ context.Context, id string) (*contract.RunRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.runs {
		if r.ID == id {
			cp := *r
			return &cp, nil
		}
	}
	return nil, fmt.Errorf("run %s: %w", id, metadata.ErrNotFound)
}

func (f *fakeHistory) Tasks(_ context.Context, id string) ([]*contract.TaskRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*contract.TaskRecord
	for _, t := range f.tasks[id] {
		cp := *t
		out = append(out, &cp)
	}
	return out, nil
}

func (f *fakeHistory) Attempts(_ context.Context, id, path string) ([]*contract.AttemptRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*contract.AttemptRecord
	for _, a := range f.attempts[id] {
		if path == "" || a.TaskPath == path {
			cp := *a
			out = append(out, &cp)
		}
	}
	return out, nil
}

func (f *fakeHistory) FindArtifact(_ context.Context, uri string) (*metadata.Artifact, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a, ok := f.artifacts[uri]; ok {
		cp := *a
		return &cp, nil
	}
	return nil, fmt.Errorf("artifact %s: %w", uri, metadata.ErrNotFound)
}

func (f *fakeHistory) TaskInputs(_ context.Context, id, path string) ([]metadata.Input, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inputs[id+"/"+path], nil
}

// set changes a task's and the run's state.
func (f *fakeHistory) set(run, path string, st contract.State, runState contract.State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.tasks[run] {
		if t.Path == path {
			t.State = st
			if st.Final() {
				t.FinishedAt = t.StartedAt.Add(1500 * time.Millisecond)
			}
		}
	}
	for _, r := range f.runs {
		if r.ID == run {
			r.State = runState
			if runState.Final() {
				r.FinishedAt = r.StartedAt.Add(2 * time.Second)
			}
		}
	}
}

const hostile = `<script>alert("x")</script>`

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture is a history with a finished run (hostile names, a skipped
// task, artifacts of every kind), a running one and a directory of
// artifact files.
func fixture(t *testing.T) (*fakeHistory, string) {
	t.Helper()
	dir := t.TempDir()
	f := newFake()
	f.runs = append(f.runs,
		&contract.RunRecord{ID: "r1", Pipeline: "demo", State: contract.Succeeded, StartedAt: t0, FinishedAt: t0.Add(5 * time.Second),
			Params: map[string]any{"who": hostile, "n": 3.0}, Executor: "process", Outputs: map[string]any{"lines": 3.0}},
		&contract.RunRecord{ID: "r2", Pipeline: "demo", State: contract.Running, StartedAt: t0.Add(time.Minute), PID: 1, Executor: "process"})
	logPath := filepath.Join(dir, "attempt-1.log")
	// The executor input mlpipe writes beside the log (input parameters).
	ei := `{"inputs": {"parameterValues": {"epochs": 3, "note": ` + strconv.Quote(hostile) + `}}, "outputs": {}}`
	if err := os.WriteFile(filepath.Join(dir, "executor_input.json"), []byte(ei), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logPath, []byte("hello\n"+hostile+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	arts := []*metadata.Artifact{
		{URI: write("metrics", "{}"), Name: "metrics", Type: "system.Metrics", Metadata: map[string]any{"accuracy": 0.9, hostile: 1.0}},
		{URI: write("cm", "{}"), Name: "cm", Type: "system.ClassificationMetrics", Metadata: map[string]any{
			"confusionMatrix": map[string]any{
				"annotationSpecs": []any{map[string]any{"displayName": "cat"}, map[string]any{"displayName": hostile}},
				"rows":            []any{map[string]any{"row": []any{8.0, 2.0}}, map[string]any{"row": []any{1.0, 9.0}}}},
			"confidenceMetrics": []any{
				map[string]any{"falsePositiveRate": 0.0, "recall": 0.0, "confidenceThreshold": 1.0},
				map[string]any{"falsePositiveRate": 0.1, "recall": 0.8, "confidenceThreshold": 0.5},
				map[string]any{"falsePositiveRate": 1.0, "recall": 1.0, "confidenceThreshold": 0.0}}}},
		{URI: write("page.html", `<h1>hi</h1><script>parent.document.title="pwned"</script>`), Name: "page", Type: "system.HTML"},
		{URI: write("notes.md", "# Title\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1))\n"), Name: "notes", Type: "system.Markdown"},
		{URI: write("data.csv", "a,b\n1,"+hostile+"\n"), Name: "data", Type: "system.Dataset", Metadata: map[string]any{"note": hostile}},
	}
	outs := map[string][]contract.ArtifactRecord{}
	for _, a := range arts {
		a.RunID, a.TaskPath, a.Digest = "r1", "train", "sha256:00"
		st, _ := os.Stat(a.URI)
		a.Size = st.Size()
		f.artifacts[a.URI] = a
		outs[a.Name] = append(outs[a.Name], contract.ArtifactRecord{URI: a.URI, Type: a.Type, Size: a.Size, Metadata: a.Metadata})
	}
	f.tasks["r1"] = []*contract.TaskRecord{
		{Path: "prepare", Name: "prepare", State: contract.Cached, StartedAt: t0, FinishedAt: t0.Add(time.Second), CacheKey: "k1", CachedFrom: "r0/prepare"},
		{Path: "train", Name: "train", State: contract.Succeeded, Attempts: 1, StartedAt: t0.Add(time.Second), FinishedAt: t0.Add(3 * time.Second),
			Outputs: contract.OutputsRecord{Parameters: map[string]any{"loss": 0.1}, Artifacts: outs}, GPUs: []string{"GPU-1"}},
		{Path: "condition-1/" + hostile, Name: hostile, State: contract.Skipped, Error: "condition false: " + hostile},
		{Path: "for-loop-2[0]/eval", Name: "eval", State: contract.Succeeded, StartedAt: t0.Add(3 * time.Second), FinishedAt: t0.Add(4 * time.Second)},
		{Path: "for-loop-2[1]/eval", Name: "eval", State: contract.Succeeded, StartedAt: t0.Add(3 * time.Second), FinishedAt: t0.Add(4 * time.Second)},
		{Path: "for-loop-2", Name: "for-loop-2", Kind: "dag", State: contract.Succeeded},
	}
	f.attempts["r1"] = []*contract.AttemptRecord{{TaskPath: "train", Attempt: 1, StartedAt: t0.Add(time.Second), FinishedAt: t0.Add(3 * time.Second), LogPath: logPath,
		Phases: []contract.Phase{{Name: "execute", Start: t0.Add(time.Second), End: t0.Add(3 * time.Second)}},
		GPUSamples: []contract.GPUSample{{Time: t0.Add(time.Second), UUID: "GPU-1", Util: 10, MemUsed: 1 << 30, PowerWatts: 100},
			{Time: t0.Add(2 * time.Second), UUID: "GPU-1", Util: 90, MemUsed: 2 << 30, PowerWatts: 300}}}}
	f.inputs["r1/train"] = []metadata.Input{{Name: "data", URI: arts[4].URI}}
	f.tasks["r2"] = []*contract.TaskRecord{
		{Path: "a", Name: "a", State: contract.Running, StartedAt: t0.Add(time.Minute)},
		{Path: "b", Name: "b", State: contract.Pending},
	}
	f.attempts["r2"] = []*contract.AttemptRecord{{TaskPath: "a", Attempt: 1, StartedAt: t0.Add(time.Minute), LogPath: filepath.Join(dir, "r2-a.log")}}
	return f, dir
}

// openFile is an OpenArtifact over local files (what the store does,
// without the digest check).
func openFile(_ context.Context, a *metadata.Artifact, max int64) (io.ReadCloser, error) {
	if a.Size > max {
		return nil, ErrTooLarge
	}
	return os.Open(a.URI)
}

type testServer struct {
	*Server
	h        *fakeHistory
	dir      string
	canceled []string
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	h, dir := fixture(t)
	ts := &testServer{h: h, dir: dir}
	s, err := New(Options{History: h, OpenArtifact: openFile, Poll: 10 * time.Millisecond,
		Cancel: func(_ context.Context, r *contract.RunRecord) error {
			ts.canceled = append(ts.canceled, r.ID)
			return nil
		},
		RunJSON: func(_ context.Context, id string) (any, error) {
			return map[string]any{"run_id": id, "tasks": []any{}}, nil
		},
		GPUs: func(context.Context) GPUStatus {
			return GPUStatus{Driver: "mock driver", Mock: true, Devices: []GPUDevice{
				{Index: 0, UUID: "GPU-1", Name: "Mock H100", MemoryUsed: 1 << 30, MemoryTotal: 80 << 30, Util: 42, PowerWatts: 300,
					Holder: &GPUHolder{User: "alice", RunID: "r2", Task: "a", PID: 7}},
				{Index: 1, UUID: "GPU-2", Name: "Mock H100", MemoryTotal: 80 << 30, Util: 0, PowerWatts: -1},
				{Index: 2, UUID: "GPU-3", Name: "Mock H100", MemoryTotal: 80 << 30, Util: 0, PowerWatts: -1, Excluded: true}},
				Waiting: []GPUWaiter{{User: "bob", RunID: "r2", Task: "sub/train", Count: 2, Since: t0}}}
		}})
	if err != nil {
		t.Fatal(err)
	}
	ts.Server = s
	return ts
}

// get serves one request and returns the response with its body.
func (ts *testServer) do(req *http.Request) (*http.Response, string) {
	rec := httptest.NewRecorder()
	ts.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func (ts *testServer) get(target string) (*http.Response, string) {
	return ts.do(httptest.NewRequest(http.MethodGet, target, nil))
}

func contains(t *testing.T, what, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("%s: no %q in\n%s", what, w, clip(body, 4000))
		}
	}
}
