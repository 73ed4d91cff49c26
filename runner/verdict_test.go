package runner

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUpstreamVerdict(t *testing.T) {
	ok := &taskResult{state: Succeeded}
	cached := &taskResult{state: Cached}
	failed := &taskResult{state: Failed}
	canceled := &taskResult{state: Canceled}
	skipped := &taskResult{state: Skipped}
	bench := &taskResult{state: Succeeded, tainted: true}
	failFast := "not started: the run is failing (fail-fast; --keep-going runs independent tasks)"
	tests := []struct {
		name string
		f    taskFacts
		want verdict
	}{
		{"no upstream", taskFacts{}, verdict{run: true}},
		{"upstream succeeded or cached", taskFacts{deps: []string{"a", "b"}, results: map[string]*taskResult{"a": ok, "b": cached}}, verdict{run: true}},
		{"run cancelled", taskFacts{canceled: true, deps: []string{"a"}, results: map[string]*taskResult{"a": ok}}, verdict{state: Canceled, why: "run cancelled"}},
		{"upstream failed", taskFacts{deps: []string{"a"}, results: map[string]*taskResult{"a": failed}}, verdict{state: Skipped, why: "upstream task a failed"}},
		{"upstream skipped", taskFacts{deps: []string{"a"}, results: map[string]*taskResult{"a": skipped}}, verdict{state: Skipped, why: "upstream task a skipped"}},
		{"upstream cancelled", taskFacts{deps: []string{"a"}, results: map[string]*taskResult{"a": canceled}}, verdict{state: Canceled, why: "upstream task a canceled"}},
		{"fail-fast", taskFacts{failing: true}, verdict{state: Skipped, why: failFast}},
		{"fail-fast, exempt (exit handler DAG)", taskFacts{failing: true, exempt: true}, verdict{run: true}},
		{"exit handler after a failure", taskFacts{allCompleted: true, failing: true, deps: []string{"a"}, results: map[string]*taskResult{"a": failed}}, verdict{run: true}},
		{"after the benchmarked task", taskFacts{deps: []string{"a"}, results: map[string]*taskResult{"a": bench}, target: "train"},
			verdict{state: Skipped, why: "after the benchmarked task train", tainted: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, upstreamVerdict(tc.f), cmp.AllowUnexported(verdict{})); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
