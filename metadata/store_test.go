package metadata

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mlpipe/mlpipe/runner"
)

func open(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mlpipe.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestRunsTasksAttemptsAndLineage(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	t0 := time.Unix(1700000000, 123456789)
	run := &runner.RunRecord{ID: "r1", Pipeline: "p", State: runner.Running, StartedAt: t0, Params: map[string]any{"n": 3.0}, PID: 42, Host: "h"}
	if err := s.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	art := runner.ArtifactRecord{URI: "/a/data", Type: "system.Dataset", Digest: "sha256:ab", Size: 10, Metadata: map[string]any{"rows": 5.0}}
	producer := &runner.TaskRecord{RunID: "r1", Path: "make", Name: "make", Kind: "container", State: runner.Succeeded, Attempts: 1, StartedAt: t0, FinishedAt: t0.Add(time.Second),
		Outputs: runner.OutputsRecord{Parameters: map[string]any{"n": 1.0}, Artifacts: map[string][]runner.ArtifactRecord{"data": {art}}},
		Attempt: &runner.AttemptRecord{RunID: "r1", TaskPath: "make", Attempt: 1, StartedAt: t0, FinishedAt: t0.Add(time.Second),
			Phases: []runner.Phase{{Name: "execute", Start: t0, End: t0.Add(time.Second)}}, GPUs: []string{"GPU-1"}},
		Cache: &runner.CacheEntry{Key: "k1", RunID: "r1", TaskPath: "make", CreatedAt: t0}}
	consumer := &runner.TaskRecord{RunID: "r1", Path: "use", Name: "use", State: runner.Succeeded, Inputs: map[string][]runner.ArtifactRecord{"in": {art}}}
	if err := s.SaveBatch(ctx, []*runner.TaskRecord{producer, consumer}, nil); err != nil {
		t.Fatal(err)
	}
	tasks, err := s.Tasks(ctx, "r1")
	if err != nil || len(tasks) != 2 {
		t.Fatalf("tasks %v %v", tasks, err)
	}
	if diff := cmp.Diff(producer.Outputs, tasks[0].Outputs); diff != "" && tasks[0].Path == "make" {
		t.Errorf("outputs round trip (-want +got):\n%s", diff)
	}
	ats, err := s.Attempts(ctx, "r1", "make")
	if err != nil || len(ats) != 1 || ats[0].Phases[0].Name != "execute" || ats[0].GPUs[0] != "GPU-1" {
		t.Fatalf("attempts %+v %v", ats, err)
	}
	if !ats[0].StartedAt.Equal(t0) {
		t.Errorf("timestamps lose precision: %v vs %v", ats[0].StartedAt, t0)
	}
	e, err := s.LookupCache(ctx, "k1")
	if err != nil || e == nil || e.TaskPath != "make" {
		t.Fatalf("cache %+v %v", e, err)
	}
	if miss, err := s.LookupCache(ctx, "nope"); miss != nil || err != nil {
		t.Errorf("miss = %v %v", miss, err)
	}
	lin, err := s.Lineage(ctx, "/a/data")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([][3]string{{"r1", "make", "output"}, {"r1", "use", "input"}}, lin); diff != "" {
		t.Errorf("lineage (-want +got):\n%s", diff)
	}
	arts, _ := s.RunArtifacts(ctx, "r1")
	if len(arts) != 1 || arts[0].Digest != "sha256:ab" {
		t.Errorf("artifacts %+v", arts)
	}
	// An upsert keeps the start time when a later record has none.
	producer.StartedAt = time.Time{}
	producer.State = runner.Failed
	producer.Attempt, producer.Cache = nil, nil
	if err := s.SaveTask(ctx, producer); err != nil {
		t.Fatal(err)
	}
	tasks, _ = s.Tasks(ctx, "r1")
	for _, tk := range tasks {
		if tk.Path == "make" && (tk.State != runner.Failed || !tk.StartedAt.Equal(t0)) {
			t.Errorf("upsert: %s %v", tk.State, tk.StartedAt)
		}
	}
	if err := s.DeleteRun(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(ctx, "r1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted run: %v", err)
	}
	if e, _ := s.LookupCache(ctx, "k1"); e != nil {
		t.Error("cache entries of a deleted run survive")
	}
}

func TestResolveRun(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	for i, id := range []string{"20260101-000000-aaaaaa", "20260101-000001-bbbbbb", "20260102-000000-cccccc"} {
		if err := s.CreateRun(ctx, &runner.RunRecord{ID: id, Pipeline: "p", State: runner.Succeeded, StartedAt: time.Unix(int64(1000+i), 0)}); err != nil {
			t.Fatal(err)
		}
	}
	for ref, want := range map[string]string{"latest": "20260102-000000-cccccc", "20260101-000001": "20260101-000001-bbbbbb", "20260102-000000-cccccc": "20260102-000000-cccccc"} {
		r, err := s.ResolveRun(ctx, ref)
		if err != nil || r.ID != want {
			t.Errorf("ResolveRun(%q) = %v, %v; want %s", ref, r, err, want)
		}
	}
	if _, err := s.ResolveRun(ctx, "20260101"); err == nil {
		t.Error("an ambiguous prefix resolved")
	}
	if _, err := s.ResolveRun(ctx, "x%"); !errors.Is(err, ErrNotFound) {
		t.Errorf("LIKE wildcards are not escaped: %v", err)
	}
}

// TestSeveralWritersAtOnce: two stores (as two mlpipe processes would)
// write to one database concurrently without "database is locked".
func TestSeveralWritersAtOnce(t *testing.T) {
	_, path := open(t)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			s, err := Open(path)
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			ctx := context.Background()
			run := fmt.Sprintf("run-%d", w)
			if err := s.CreateRun(ctx, &runner.RunRecord{ID: run, Pipeline: "p", State: runner.Running, StartedAt: time.Now()}); err != nil {
				errs <- err
				return
			}
			for i := 0; i < 200; i++ {
				if err := s.SaveTask(ctx, &runner.TaskRecord{RunID: run, Path: fmt.Sprint("t", i), State: runner.Succeeded}); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s, _ := Open(path)
	defer s.Close()
	for w := 0; w < 2; w++ {
		tasks, _ := s.Tasks(t.Context(), fmt.Sprintf("run-%d", w))
		if len(tasks) != 200 {
			t.Errorf("run-%d has %d tasks", w, len(tasks))
		}
	}
}

func TestRunDependents(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	root := "minio://b/p/pipe/r_1" // '_' is a LIKE wildcard: r_1 must not match rx1
	art := runner.ArtifactRecord{URI: root + "/make/data", Digest: "sha256:ab"}
	save := func(tasks ...*runner.TaskRecord) {
		t.Helper()
		if err := s.SaveBatch(ctx, tasks, nil); err != nil {
			t.Fatal(err)
		}
	}
	save(&runner.TaskRecord{RunID: "r_1", Path: "make", Name: "make", State: runner.Succeeded,
		Outputs: runner.OutputsRecord{Artifacts: map[string][]runner.ArtifactRecord{"data": {art}}}})
	// r2: a task cached from r_1; r3: a task that read r_1's artifact;
	// rx1 and r4: unrelated (rx1's cached_from only matches r_1 as a
	// wildcard, r4 reads an artifact of another root).
	save(&runner.TaskRecord{RunID: "r2", Path: "make", Name: "make", State: runner.Cached, CachedFrom: "r_1/make"})
	save(&runner.TaskRecord{RunID: "r3", Path: "use", Name: "use", State: runner.Succeeded, Inputs: map[string][]runner.ArtifactRecord{"in": {art}}})
	save(&runner.TaskRecord{RunID: "rx1", Path: "make", Name: "make", State: runner.Cached, CachedFrom: "rx1/make"})
	save(&runner.TaskRecord{RunID: "r4", Path: "use", Name: "use", State: runner.Succeeded,
		Inputs: map[string][]runner.ArtifactRecord{"in": {{URI: "minio://b/p/pipe/r_10/make/data"}}}})
	got, err := s.RunDependents(ctx, "r_1", root)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"r2", "r3"}, got); diff != "" {
		t.Errorf("dependents of r_1 (-want +got):\n%s", diff)
	}
	if got, _ := s.RunDependents(ctx, "r4", ""); len(got) != 0 {
		t.Errorf("r4 has dependents %v", got)
	}
}
