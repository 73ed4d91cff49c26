package runner_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mlpipe/mlpipe/runner"
)

// lostHistory is a history whose task and attempt writes never reach the
// database, as when mlpipe is killed before the writer commits.
type lostHistory struct{ *memHistory }

var errLost = errors.New("database unreachable")

func (lostHistory) SaveTask(context.Context, *runner.TaskRecord) error       { return errLost }
func (lostHistory) SaveAttempt(context.Context, *runner.AttemptRecord) error { return errLost }

// TestJournalRecoversWhatTheDatabaseMissed: every record a run made is in
// its journal; recovering the journal gives the history the database would
// have had, and a resume then runs nothing again.
func TestJournalRecoversWhatTheDatabaseMissed(t *testing.T) {
	produced := 0
	e := newEnv(t, map[string]behavior{
		"produce": func(_ context.Context, w *taskIO) int {
			produced++
			w.setParam("n", "42")
			w.writeArtifact("data", "payload")
			return 0
		},
		"consume": func(_ context.Context, w *taskIO) int {
			if got := w.readArtifact("data", 0); got != "payload" {
				w.t.Errorf("consume read %q", got)
			}
			return 0
		},
	})
	ir := compilePipeline(t, map[string]string{
		"pipeline.yaml": `
name: journal
tasks:
  produce: {component: produce.yaml}
  consume: {component: consume.yaml, inputs: {data: "${{ tasks.produce.outputs.data }}", n: "${{ tasks.produce.outputs.n }}"}}
`,
		"produce.yaml": `
name: produce
outputs: [{name: n, type: Integer}, {name: data, type: Dataset}]
implementation: {container: {image: x, command: [produce]}}
`,
		"consume.yaml": `
name: consume
inputs: [{name: data, type: Dataset}, {name: n, type: Integer}]
implementation: {container: {image: x, command: [consume]}}
`,
	})
	// The reference: the same pipeline with a working history.
	ref, err := e.run(t.Context(), ir, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := e.hist.Tasks(t.Context(), ref.RunID)

	lost := lostHistory{newMemHistory()}
	res, err := e.run(t.Context(), ir, nil, func(o *runner.Options) { o.History = lost; o.NoCache = true })
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := lost.Tasks(t.Context(), res.RunID); len(got) != 0 {
		t.Fatalf("the lost history has %d tasks", len(got))
	}
	runDir := filepath.Join(e.dir, "runs", res.RunID)
	if _, err := os.Stat(filepath.Join(runDir, runner.JournalName)); err != nil {
		t.Fatalf("a run whose commits failed kept no journal: %v", err)
	}

	// The run ended, but its journal is there: it needs recovery (the
	// next command does it), though nothing is left running.
	rec, err := lost.Run(t.Context(), res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != runner.Succeeded || !runner.NeedsRecovery(e.dir, rec) {
		t.Fatalf("a finished run with a journal left: state %s, needs recovery %v", rec.State, runner.NeedsRecovery(e.dir, rec))
	}

	// Recover into a working history; the run then ends as it would have.
	h := lost.memHistory
	n, err := runner.RecoverJournal(t.Context(), h, runDir)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("the journal held no records")
	}
	if _, err := os.Stat(filepath.Join(runDir, runner.JournalName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("journal left after recovery: %v", err)
	}
	if runner.NeedsRecovery(e.dir, rec) {
		t.Error("the run still needs recovery after it")
	}
	got, _ := h.Tasks(t.Context(), res.RunID)
	strip := cmp.Transformer("strip", func(r *runner.TaskRecord) map[string]any {
		arts := map[string]int{}
		for k, v := range r.Outputs.Artifacts {
			arts[k] = len(v)
		}
		return map[string]any{"path": r.Path, "state": r.State, "attempts": r.Attempts, "params": r.Outputs.Parameters, "artifacts": arts, "kind": r.Kind}
	})
	if diff := cmp.Diff(want, got, strip); diff != "" {
		t.Errorf("recovered tasks differ from a normal run (-want +got):\n%s", diff)
	}
	for _, tr := range got {
		if tr.Kind == "container" && len(tr.Outputs.Artifacts) > 0 && tr.Outputs.Artifacts["data"][0].Digest == "" {
			t.Errorf("%s: artifact digest lost", tr.Path)
		}
	}
	if len(h.attempts) == 0 {
		t.Error("no attempts recovered")
	}

	// A second recovery finds nothing; a run with a working history leaves
	// no journal behind.
	if n, err := runner.RecoverJournal(t.Context(), h, runDir); n != 0 || err != nil {
		t.Errorf("second recovery: %d records, %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "runs", ref.RunID, runner.JournalName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a finished run kept its journal: %v", err)
	}
	if produced != 2 {
		t.Errorf("produce ran %d times, want 2", produced)
	}
}
