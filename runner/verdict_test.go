package runner

import (
	"strings"
	"testing"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"

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

func TestDescribeCondition(t *testing.T) {
	task := &pb.PipelineTaskSpec{Inputs: &pb.TaskInputsSpec{Parameters: map[string]*pb.TaskInputsSpec_InputParameterSpec{
		"pipelinechannel--evaluate-best_accuracy": {Kind: &pb.TaskInputsSpec_InputParameterSpec_TaskOutputParameter{
			TaskOutputParameter: &pb.TaskInputsSpec_InputParameterSpec_TaskOutputParameterSpec{ProducerTask: "evaluate", OutputParameterKey: "best_accuracy"}}},
		"pipelinechannel--threshold":        {Kind: &pb.TaskInputsSpec_InputParameterSpec_ComponentInputParameter{ComponentInputParameter: "pipelinechannel--threshold"}},
		"pipelinechannel--flip-coin-Output": {Kind: &pb.TaskInputsSpec_InputParameterSpec_ComponentInputParameter{ComponentInputParameter: "pipelinechannel--flip-coin-Output"}},
	}}}
	params := map[string]any{
		"pipelinechannel--evaluate-best_accuracy": 0.72, "pipelinechannel--threshold": 0.8,
		"pipelinechannel--flip-coin-Output": "tails", "long": strings.Repeat("x", 100),
	}
	tests := []struct{ cond, want string }{
		{`inputs.parameter_values["pipelinechannel--evaluate-best_accuracy"] >= inputs.parameter_values["pipelinechannel--threshold"]`,
			"evaluate.best_accuracy (0.72) >= threshold (0.8)"},
		// The SDK's form: single quotes, casts.
		{`inputs.parameter_values['pipelinechannel--flip-coin-Output'] == 'heads'`, "flip-coin-Output (tails) == 'heads'"},
		{`int(inputs.parameter_values[ 'pipelinechannel--threshold' ]) > 1`, "int(threshold (0.8)) > 1"},
		{`inputs.parameter_values['missing'] == 1`, "missing (unset) == 1"},
		{`inputs.parameter_values['long'] == ''`, "long (" + strings.Repeat("x", 57) + "...) == ''"},
		{`true`, "true"},
	}
	for _, tc := range tests {
		if got := describeCondition(tc.cond, task, params); got != tc.want {
			t.Errorf("describeCondition(%s)\n got %s\nwant %s", tc.cond, got, tc.want)
		}
	}
}
