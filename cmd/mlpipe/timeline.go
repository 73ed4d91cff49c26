package main

import (
	"fmt"

	"github.com/mlpipe/mlpipe/runner"
)

// writeTimeline draws a run's timeline as SVG (the bench issue).
func writeTimeline(path string, r *runner.RunRecord, tasks []*runner.TaskRecord, attempts []*runner.AttemptRecord) error {
	return fmt.Errorf("timelines are not available yet")
}
