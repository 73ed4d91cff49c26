package main

import (
	"os"

	"github.com/mlpipe/mlpipe/bench"
	"github.com/mlpipe/mlpipe/runner"
)

// writeTimeline draws a run's timeline as SVG.
func writeTimeline(path string, r *runner.RunRecord, tasks []*runner.TaskRecord, attempts []*runner.AttemptRecord) error {
	return os.WriteFile(path, bench.TimelineSVG(r, tasks, attempts), 0o644)
}
