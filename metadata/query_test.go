package metadata

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mlpipe/mlpipe/contract"
)

func TestQueryRuns(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	t0 := time.Unix(1700000000, 0)
	for i := range 25 {
		p, st := "a", contract.Succeeded
		if i%5 == 0 {
			p = "b"
		}
		if i%2 == 1 {
			st = contract.Failed
		}
		if err := s.CreateRun(ctx, &contract.RunRecord{ID: fmt.Sprintf("r%02d", i), Pipeline: p, State: st, StartedAt: t0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(rs []*contract.RunRecord) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	for _, tc := range []struct {
		pipeline, state string
		limit, offset   int
		want            []string
		total           int
	}{
		{"", "", 3, 0, []string{"r24", "r23", "r22"}, 25},
		{"", "", 3, 3, []string{"r21", "r20", "r19"}, 25},
		{"", "", 3, 24, []string{"r00"}, 25},
		{"b", "", 10, 0, []string{"r20", "r15", "r10", "r05", "r00"}, 5},
		{"b", "FAILED", 10, 0, []string{"r15", "r05"}, 2},
		{"a", "SUCCEEDED", 2, 1, []string{"r22", "r18"}, 10},
		{"none", "", 10, 0, nil, 0},
	} {
		got, total, err := s.QueryRuns(ctx, tc.pipeline, tc.state, tc.limit, tc.offset)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, ids(got)); diff != "" || total != tc.total {
			t.Errorf("QueryRuns(%q, %q, %d, %d): total %d (want %d), ids (-want +got):\n%s", tc.pipeline, tc.state, tc.limit, tc.offset, total, tc.total, diff)
		}
	}
	ps, err := s.Pipelines(ctx)
	if err != nil || !cmp.Equal(ps, []string{"a", "b"}) {
		t.Errorf("Pipelines = %v, %v", ps, err)
	}
}

func TestFindArtifactAndInputs(t *testing.T) {
	s, _ := open(t)
	ctx := t.Context()
	art := contract.ArtifactRecord{URI: "/a/m", Type: "system.Metrics", Digest: "sha256:ab", Size: 3, Metadata: map[string]any{"acc": 0.5}}
	tasks := []*contract.TaskRecord{
		{RunID: "r1", Path: "make", Name: "make", State: contract.Succeeded, Outputs: contract.OutputsRecord{Artifacts: map[string][]contract.ArtifactRecord{"m": {art}}}},
		{RunID: "r1", Path: "use", Name: "use", State: contract.Succeeded, Inputs: map[string][]contract.ArtifactRecord{"in": {art}}},
	}
	if err := s.SaveBatch(ctx, tasks, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.FindArtifact(ctx, "/a/m")
	if err != nil {
		t.Fatal(err)
	}
	want := &Artifact{URI: "/a/m", RunID: "r1", TaskPath: "make", Name: "m", Type: "system.Metrics", Digest: "sha256:ab", Size: 3, Metadata: map[string]any{"acc": 0.5}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FindArtifact (-want +got):\n%s", diff)
	}
	if _, err := s.FindArtifact(ctx, "/a/../a/m"); !errors.Is(err, ErrNotFound) {
		t.Errorf("FindArtifact of an unrecorded URI: %v, want ErrNotFound", err)
	}
	ins, err := s.TaskInputs(ctx, "r1", "use")
	if diff := cmp.Diff([]Input{{Name: "in", URI: "/a/m", Digest: "sha256:ab"}}, ins); diff != "" || err != nil {
		t.Errorf("TaskInputs: %v (-want +got):\n%s", err, diff)
	}
}

// BenchmarkQueryRuns10000 is the first page of the runs list over a
// history of 10,000 runs, filtered and not.
func BenchmarkQueryRuns10000(b *testing.B) {
	s, err := Open(b.TempDir() + "/mlpipe.db")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	t0 := time.Unix(1700000000, 0)
	var batch []*contract.RunRecord
	for i := range 10000 {
		batch = append(batch, &contract.RunRecord{ID: fmt.Sprintf("run-%05d", i), Pipeline: fmt.Sprintf("p%d", i%7), State: contract.Succeeded,
			StartedAt: t0.Add(time.Duration(i) * time.Second), Params: map[string]any{"n": i}})
	}
	if err := insertRuns(ctx, s, batch); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := s.QueryRuns(ctx, "", "", 50, 0); err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.QueryRuns(ctx, "p3", "SUCCEEDED", 50, 50); err != nil {
			b.Fatal(err)
		}
	}
}

// insertRuns records many runs in one transaction (tests and benchmarks).
func insertRuns(ctx context.Context, s *Store, runs []*contract.RunRecord) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, r := range runs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO runs (id, pipeline, state, started_at, finished_at, params) VALUES (?,?,?,?,?,?)`,
			r.ID, r.Pipeline, string(r.State), ts(r.StartedAt), ts(r.FinishedAt), js(r.Params)); err != nil {
			return err
		}
	}
	return tx.Commit()
}
