package runner_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mlpipe/mlpipe/runner"
)

// resourceIR is the SDK's shape for resources set from pipeline
// parameters (set_cpu_limit(cpu), set_memory_limit(mem), set_cpu_request):
// placeholders in resourceCpuLimit etc., next to the old numeric fields.
const resourceIR = `
pipelineInfo: {name: resources}
schemaVersion: 2.1.0
sdkVersion: kfp-2.7.0
root:
  inputDefinitions:
    parameters:
      cpu: {parameterType: STRING, defaultValue: "4000m"}
      mem: {parameterType: STRING, defaultValue: "1Gi"}
      req: {parameterType: STRING, defaultValue: "1"}
  dag:
    tasks:
      train:
        taskInfo: {name: train}
        componentRef: {name: comp-train}
        inputs:
          parameters:
            pipelinechannel--cpu: {componentInputParameter: cpu}
            pipelinechannel--mem: {componentInputParameter: mem}
            pipelinechannel--req: {componentInputParameter: req}
components:
  comp-train:
    executorLabel: exec-train
deploymentSpec:
  executors:
    exec-train:
      container:
        image: python:3.11
        command: [train]
        resources:
          resourceCpuLimit: "{{$.inputs.parameters['pipelinechannel--cpu']}}"
          resourceMemoryLimit: "{{$.inputs.parameters['pipelinechannel--mem']}}"
          resourceCpuRequest: "{{$.inputs.parameters['pipelinechannel--req']}}"
`

// TestResourceLimitsAboveTheMachineAreClamped: a limit is a ceiling, so a
// limit above the machine runs with the machine's (and says so); a request
// above it can never be met and fails the task with the numbers.
func TestResourceLimitsAboveTheMachineAreClamped(t *testing.T) {
	ir := loadIR(t, resourceIR)
	var mu sync.Mutex
	var got []float64
	var mem []int64
	e := newEnv(t, map[string]behavior{"train": func(ctx context.Context, w *taskIO) int {
		mu.Lock()
		got = append(got, w.task.CPU)
		mem = append(mem, w.task.Memory)
		mu.Unlock()
		return 0
	}})
	var out bytes.Buffer
	res, err := e.run(t.Context(), ir, map[string]any{"cpu": "4000m", "mem": "64Gi", "req": "1"}, func(o *runner.Options) {
		o.CPUs, o.Memory, o.Output = 2, 8<<30, &out
	})
	if err != nil || res.State != runner.Succeeded {
		t.Fatalf("run: %v %v\n%s", res, err, out.String())
	}
	if diff := cmp.Diff([]float64{2}, got); diff != "" {
		t.Errorf("CPU limit given to the executor (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{8 << 30}, mem); diff != "" {
		t.Errorf("memory limit given to the executor (-want +got):\n%s", diff)
	}
	for _, want := range []string{"train | note: cpu limit 4 is above this machine's budget of 2 CPUs: limited to 2", "train | note: memory limit 64GiB is above this machine's 8GiB: limited to 8GiB"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output does not say %q:\n%s", want, out.String())
		}
	}

	// A request above the machine fails the task before it runs.
	got = nil
	res, err = e.run(t.Context(), ir, map[string]any{"cpu": "4000m", "mem": "1Gi", "req": "3"}, func(o *runner.Options) { o.CPUs = 2 })
	if res == nil || err == nil {
		t.Fatalf("run: %v %v", res, err)
	}
	if res.State != runner.Failed || len(got) != 0 {
		t.Fatalf("state %s, ran %d times; want FAILED before running", res.State, len(got))
	}
	if msg := e.hist.task(t, res.RunID, "train").Error; !strings.Contains(msg, "requests 3 CPUs but the budget is 2") {
		t.Errorf("error %q", msg)
	}
}
