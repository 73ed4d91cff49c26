package runner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/mlpipe/mlpipe/compiler"
	"github.com/mlpipe/mlpipe/kfpir"
	"github.com/mlpipe/mlpipe/runner"
	"github.com/mlpipe/mlpipe/storage"
)

var loopIndex = regexp.MustCompile(`\[\d+\]`)

// behavior is what the fake executor does for one task: it may write
// outputs through w and returns the exit code.
type behavior func(ctx context.Context, w *taskIO) int

// taskIO gives a behavior the task's executor input and helpers to write
// outputs.
type taskIO struct {
	t    *testing.T
	task *runner.ExecTask
	in   runner.ExecutorInput
}

func (w *taskIO) param(name string) any { return w.in.Inputs.ParameterValues[name] }

func (w *taskIO) setParam(name, text string) {
	f := w.in.Outputs.Parameters[name].OutputFile
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		w.t.Error(err)
	}
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		w.t.Error(err)
	}
}

func (w *taskIO) writeArtifact(name, content string) {
	a := w.in.Outputs.Artifacts[name].Artifacts[0]
	if err := os.MkdirAll(filepath.Dir(a.URI), 0o755); err != nil {
		w.t.Error(err)
	}
	if err := os.WriteFile(a.URI, []byte(content), 0o644); err != nil {
		w.t.Error(err)
	}
}

func (w *taskIO) readArtifact(name string, i int) string {
	b, err := os.ReadFile(w.in.Inputs.Artifacts[name].Artifacts[i].URI)
	if err != nil {
		w.t.Error(err)
	}
	return string(b)
}

// fakeExecutor runs behaviors by task display name and counts calls and
// concurrency.
type fakeExecutor struct {
	t         *testing.T
	name      string // Name() when set, else "fake"
	mu        sync.Mutex
	behaviors map[string]behavior
	calls     map[string]int
	running   int
	maxRun    int
	order     []string
	argv      map[string][]string
}

func newFake(t *testing.T, b map[string]behavior) *fakeExecutor {
	return &fakeExecutor{t: t, behaviors: b, calls: map[string]int{}, argv: map[string][]string{}}
}

// Properties: a fake named "docker" behaves as an isolated executor.
func (f *fakeExecutor) Properties() runner.ExecutorProperties {
	return runner.ExecutorProperties{Isolated: f.name == "docker", RunsEntrypoint: f.name == "docker"}
}

func (f *fakeExecutor) Name() string {
	if f.name != "" {
		return f.name
	}
	return "fake"
}

func (f *fakeExecutor) Run(ctx context.Context, t *runner.ExecTask) (*runner.ExecResult, error) {
	base := loopIndex.ReplaceAllString(t.Name, "")
	f.mu.Lock()
	f.calls[t.Name]++
	f.running++
	f.maxRun = max(f.maxRun, f.running)
	f.order = append(f.order, t.Name)
	f.argv[t.Name] = append(append([]string(nil), t.Command...), t.Args...)
	b := f.behaviors[t.Name]
	if b == nil {
		b = f.behaviors[base]
	}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running--
		f.mu.Unlock()
	}()
	w := &taskIO{t: f.t, task: t}
	if err := json.Unmarshal(t.ExecutorInput, &w.in); err != nil {
		return nil, err
	}
	code := 0
	if b != nil {
		code = b(ctx, w)
	}
	if ctx.Err() != nil {
		return &runner.ExecResult{ExitCode: 137, Signal: "killed"}, nil
	}
	return &runner.ExecResult{ExitCode: code}, nil
}

func (f *fakeExecutor) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[name]
}

// memHistory is an in-memory runner.History.
type memHistory struct {
	mu       sync.Mutex
	runs     map[string]*runner.RunRecord
	tasks    map[string]map[string]*runner.TaskRecord
	attempts []*runner.AttemptRecord
	cache    map[string]*runner.CacheEntry
}

func newMemHistory() *memHistory {
	return &memHistory{runs: map[string]*runner.RunRecord{}, tasks: map[string]map[string]*runner.TaskRecord{}, cache: map[string]*runner.CacheEntry{}}
}

func (h *memHistory) CreateRun(_ context.Context, r *runner.RunRecord) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	cp := *r
	h.runs[r.ID] = &cp
	return nil
}
func (h *memHistory) UpdateRun(ctx context.Context, r *runner.RunRecord) error {
	return h.CreateRun(ctx, r)
}
func (h *memHistory) Run(_ context.Context, id string) (*runner.RunRecord, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.runs[id]
	if !ok {
		return nil, fmt.Errorf("run %s not found", id)
	}
	cp := *r
	return &cp, nil
}
func (h *memHistory) SaveTask(_ context.Context, t *runner.TaskRecord) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.tasks[t.RunID] == nil {
		h.tasks[t.RunID] = map[string]*runner.TaskRecord{}
	}
	cp := *t
	cp.Attempt, cp.Cache = nil, nil
	h.tasks[t.RunID][t.Path] = &cp
	if t.Attempt != nil {
		h.attempts = append(h.attempts, t.Attempt)
	}
	if t.Cache != nil {
		h.cache[t.Cache.Key] = t.Cache
	}
	return nil
}
func (h *memHistory) Tasks(_ context.Context, runID string) ([]*runner.TaskRecord, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*runner.TaskRecord
	for _, t := range h.tasks[runID] {
		cp := *t
		out = append(out, &cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}
func (h *memHistory) SaveAttempt(_ context.Context, a *runner.AttemptRecord) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.attempts = append(h.attempts, a)
	return nil
}
func (h *memHistory) LookupCache(_ context.Context, key string) (*runner.CacheEntry, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cache[key], nil
}

// task returns the record of a task by display name.
func (h *memHistory) task(t *testing.T, runID, name string) *runner.TaskRecord {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, tr := range h.tasks[runID] {
		if tr.Name == name && tr.Kind != "dag" {
			return tr
		}
	}
	t.Fatalf("run %s has no task %q", runID, name)
	return nil
}

// env is what one test run needs.
type env struct {
	t       *testing.T
	dir     string
	hist    *memHistory
	store   *storage.Local
	fake    *fakeExecutor
	events  []runner.Event
	eventMu sync.Mutex
}

func newEnv(t *testing.T, b map[string]behavior) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := storage.NewLocal(filepath.Join(dir, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, dir: dir, hist: newMemHistory(), store: st, fake: newFake(t, b)}
}

func (e *env) options(ir *kfpir.IR, params map[string]any) runner.Options {
	return runner.Options{IR: ir, Params: params, Executor: e.fake, Store: e.store, History: e.hist, StateDir: e.dir,
		MaxParallel: 8, CPUs: 8, Memory: 16 << 30,
		Events: func(ev runner.Event) {
			e.eventMu.Lock()
			e.events = append(e.events, ev)
			e.eventMu.Unlock()
		}}
}

func (e *env) run(ctx context.Context, ir *kfpir.IR, params map[string]any, edit ...func(*runner.Options)) (*runner.Result, error) {
	o := e.options(ir, params)
	for _, f := range edit {
		f(&o)
	}
	return runner.Run(ctx, o)
}

// loadIR parses hand-written IR (YAML) in a test.
func loadIR(t *testing.T, src string) *kfpir.IR {
	t.Helper()
	ir, err := kfpir.LoadIRBytes("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("load IR: %v", err)
	}
	if err := kfpir.ValidateIR(ir); err != nil {
		t.Fatalf("IR is invalid: %v", err)
	}
	return ir
}

// compilePipeline compiles a pipeline.yaml written in a test, with its
// component files.
func compilePipeline(t *testing.T, files map[string]string) *kfpir.IR {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := compiler.LoadPipeline(filepath.Join(dir, "pipeline.yaml"))
	if err != nil {
		t.Fatalf("load pipeline: %v", err)
	}
	spec, err := compiler.Compile(p)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	ir, err := kfpir.FromSpec("pipeline.yaml", spec)
	if err != nil {
		t.Fatal(err)
	}
	return ir
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
