package main

import (
	"fmt"
	"regexp"

	"github.com/mlpipe/mlpipe/internal/termsafe"
	"github.com/mlpipe/mlpipe/runner"
)

// loopLines is how many iterations of one loop the text views list; the
// others are counted (in the live view's summary) but not printed, so that
// a loop over 10,000 items stays readable. Failures, skips and
// cancellations are always printed; `mlpipe runs show` lists everything.
const loopLines = 20

var loopIndex = regexp.MustCompile(`\[[0-9]+\]`)

// loopQuiet decides which events of loop iterations the text views print.
// Its callers hold their own lock.
type loopQuiet struct {
	shown map[string]int // loop task (path without indexes) → iterations listed
}

// filter returns the lines to print for e: none, its own line, or its own
// line and then a note that the loop's further iterations are counted only.
func (q *loopQuiet) filter(e runner.Event, line string) []string {
	if e.Path == "" || !loopIndex.MatchString(e.Path) {
		return []string{line}
	}
	switch e.State {
	case runner.Running, runner.Pending, runner.Succeeded, runner.Cached:
	default:
		return []string{line} // failed, skipped, cancelled
	}
	if q.shown == nil {
		q.shown = map[string]int{}
	}
	key := loopIndex.ReplaceAllString(e.Path, "")
	if e.State != runner.Succeeded && e.State != runner.Cached {
		if q.shown[key] >= loopLines {
			return nil
		}
		return []string{line}
	}
	q.shown[key]++
	switch n := q.shown[key]; {
	case n < loopLines:
		return []string{line}
	case n == loopLines:
		return []string{line, fmt.Sprintf("... further iterations of %s are counted, not listed (mlpipe runs show lists them all)", termsafe.Escape(runner.DisplayName(key)))}
	}
	return nil
}
