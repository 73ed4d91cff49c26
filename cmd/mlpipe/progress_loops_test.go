package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mlpipe/mlpipe/runner"
)

// A loop over many items lists its first iterations, then counts the rest;
// failures and tasks outside loops are always listed.
func TestLoopIterationsAreAggregated(t *testing.T) {
	var q loopQuiet
	printed := 0
	var notes []string
	for i := 0; i < 100; i++ {
		for _, st := range []runner.State{runner.Running, runner.Succeeded} {
			e := runner.Event{Task: fmt.Sprintf("work[%d]", i), Path: fmt.Sprintf("for-loop-1[%d]/work", i), State: st}
			for _, l := range q.filter(e, "line") {
				if strings.HasPrefix(l, "...") {
					notes = append(notes, l)
				} else {
					printed++
				}
			}
		}
	}
	// The first 20 iterations' RUNNING and SUCCEEDED lines, then one note.
	if printed != 2*loopLines || len(notes) != 1 || !strings.Contains(notes[0], "further iterations of work are counted") {
		t.Errorf("printed %d lines and notes %q, want %d lines and one note", printed, notes, 2*loopLines)
	}
	for _, e := range []runner.Event{
		{Path: "for-loop-1[200]/work", State: runner.Failed},
		{Path: "for-loop-1[201]/work", State: runner.Skipped},
		{Path: "train", State: runner.Succeeded},
		{Path: "for-loop-2[0]/other", State: runner.Succeeded},
	} {
		if got := q.filter(e, "x"); len(got) != 1 {
			t.Errorf("%s %s: printed %v", e.Path, e.State, got)
		}
	}
}
