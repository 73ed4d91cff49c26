package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mlpipe/mlpipe/contract"
	"github.com/mlpipe/mlpipe/runner"
)

// Plan is a benchmark to run: the run options (the same for every
// repetition; RunID is left empty), warm-up and measured repetitions, and
// the target task (empty: the whole pipeline).
type Plan struct {
	Options runner.Options
	Warmup  int
	Repeat  int
	Target  string
	// Progress, when set, is told of each repetition as it ends.
	Progress func(label string, i, n int, runID string, took time.Duration)
}

// Measure runs the plan's repetitions one after the other and returns the
// ids of the measured (not warm-up) runs. With a target, only it runs
// without the cache; without one, nothing comes from the cache.
func Measure(ctx context.Context, p Plan) ([]string, error) {
	var kept []string
	n := p.Warmup + p.Repeat
	for i := 0; i < n; i++ {
		opts := p.Options
		opts.NoCache = p.Target == ""
		opts.Target = p.Target
		start := time.Now()
		res, err := runner.Run(ctx, opts)
		label := "measured"
		if i < p.Warmup {
			label = "warm-up"
		}
		if err != nil {
			var re *runner.RunError
			if errors.As(err, &re) && re.State == contract.Failed {
				return nil, fmt.Errorf("%s run %d (%s) failed: %s; see mlpipe logs %s: %w", label, i+1, re.RunID, re.Message, re.RunID, err)
			}
			return nil, err
		}
		if p.Progress != nil {
			p.Progress(label, i+1, n, res.RunID, time.Since(start))
		}
		if i >= p.Warmup {
			kept = append(kept, res.RunID)
		}
	}
	return kept, nil
}

// HistoryReader is what Gather reads of the run history.
type HistoryReader interface {
	Run(ctx context.Context, id string) (*contract.RunRecord, error)
	Tasks(ctx context.Context, runID string) ([]*contract.TaskRecord, error)
	Attempts(ctx context.Context, runID, path string) ([]*contract.AttemptRecord, error)
}

// Gather reads the measured runs back from the history, keeping only the
// target's tasks when there is one, and returns them with the last run's
// record (for its timeline).
func Gather(ctx context.Context, h HistoryReader, runIDs []string, target string) ([]RunData, *contract.RunRecord, error) {
	var data []RunData
	var last *contract.RunRecord
	for _, id := range runIDs {
		rec, err := h.Run(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		tasks, err := h.Tasks(ctx, id)
		if err != nil {
			return nil, nil, err
		}
		ats, err := h.Attempts(ctx, id, "")
		if err != nil {
			return nil, nil, err
		}
		if target != "" {
			var keep []*contract.TaskRecord
			for _, t := range tasks {
				if IsTarget(t.Name, target) {
					keep = append(keep, t)
				}
			}
			tasks = keep
		}
		data = append(data, RunData{RunID: id, Tasks: tasks, Attempts: ats})
		last = rec
	}
	return data, last, nil
}

// IsTarget is contract.IsTarget: the rule the runner uses too.
func IsTarget(name, target string) bool { return contract.IsTarget(name, target) }
