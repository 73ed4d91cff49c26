package kfpir

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mlpipe/mlpipe/internal/diag"
)

func TestValidateIRReportsPaths(t *testing.T) {
	src := `
pipelineInfo: {name: Bad.Name}
schemaVersion: 2.0.0
root:
  dag:
    tasks:
      a:
        componentRef: {name: comp-missing}
        taskInfo: {name: a}
      b:
        componentRef: {name: comp-x}
        dependentTasks: [zz]
        inputs:
          parameters:
            p: {taskOutputParameter: {producerTask: a, outputParameterKey: nope}}
            q: {componentInputParameter: undefined}
        triggerPolicy: {condition: "inputs.parameter_values['q'] =="}
        taskInfo: {name: b}
        bogusField: 1
components:
  comp-x:
    executorLabel: exec-missing
    inputDefinitions:
      parameters:
        p: {parameterType: STRING}
        q: {parameterType: STRING}
deploymentSpec:
  executors: {}
`
	err := validateBytes("ir.yaml", []byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{
		`schemaVersion: must be "2.1.0"`,
		`pipelineInfo.name: "Bad.Name" must match`,
		`root.dag.tasks.a.componentRef.name: component "comp-missing" is not in components`,
		`root.dag.tasks.b.dependentTasks: unknown task "zz"`,
		`root.dag.tasks.b.inputs.parameters.q.componentInputParameter: "undefined" is not an input parameter of root`,
		`root.dag.tasks.b.triggerPolicy.condition: invalid CEL`,
		`root.dag.tasks.b.bogusField: unknown field "bogusField"`,
		`components.comp-x.executorLabel: executor "exec-missing" is not in deploymentSpec.executors`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("IR diagnostics lack %q:\n%v", w, err)
		}
	}
}

func TestLoadSDKIRWithNewerFields(t *testing.T) {
	// Multi-document IR with fields newer than the pinned proto: they are
	// kept, not dropped and not fatal.
	src := `
components:
  comp-train:
    executorLabel: exec-train
    inputDefinitions:
      parameters:
        mode: {parameterType: STRING, literals: [fast, slow]}
        cfg: {parameterType: TASK_CONFIG}
deploymentSpec:
  executors:
    exec-train:
      container:
        image: img
        command: [train]
        resources:
          cpuLimit: 2.0
          resourceCpuLimit: '{{$.inputs.parameters[''pipelinechannel--cpu'']}}'
          memoryLimit: 1.073741824
          resourceMemoryLimit: 1Gi
          accelerator: {count: '1', resourceCount: '1', resourceType: nvidia.com/gpu, type: nvidia.com/gpu}
    exec-imp:
      importer:
        artifactUri: {constant: gs://b/k}
        typeSchema: {schemaTitle: system.Dataset, schemaVersion: 0.0.1}
        downloadToWorkspace: true
pipelineInfo: {name: newer}
root:
  dag:
    tasks:
      train:
        cachingOptions: {enableCache: true, cacheKey: my-key}
        componentRef: {name: comp-train}
        inputs:
          parameters:
            mode: {runtimeValue: {constant: fast}}
        taskInfo: {name: train}
schemaVersion: 2.1.0
---
platforms:
  kubernetes:
    pipelineConfig: {workspace: {size: 1Gi}}
`
	ir, err := LoadIRBytes("sdk.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateIR(ir); err != nil {
		t.Fatalf("valid newer IR rejected: %v", err)
	}
	r := ir.Executors["exec-train"].Container.Resources
	if r.CPULimit != "{{$.inputs.parameters['pipelinechannel--cpu']}}" || r.MemoryLimit != "1Gi" || r.AcceleratorCount != "1" || r.AcceleratorType != "nvidia.com/gpu" {
		t.Errorf("resources = %+v", r)
	}
	if ir.CacheKeys["root/train"] != "my-key" {
		t.Errorf("cacheKey lost: %v", ir.CacheKeys)
	}
	if len(ir.Literals["comp-train/mode"]) != 2 || !ir.TaskConfig["comp-train/cfg"] {
		t.Errorf("literals %v task config %v", ir.Literals, ir.TaskConfig)
	}
	if !ir.Executors["exec-imp"].Importer.DownloadToWorkspace {
		t.Error("downloadToWorkspace lost")
	}
	if ir.Platform == nil {
		t.Error("PlatformSpec document lost")
	}
}

// What validate accepts, the API server accepts: an enum value the proto
// does not define is refused with its line, not read as the zero value.
func TestValidateRefusesUnknownEnumValues(t *testing.T) {
	src := strings.Replace(irWith(nil), "{parameterType: STRING}", "{parameterType: STRINGG}", 1)
	src = strings.Replace(src, "taskInfo: {name: a}", "taskInfo: {name: a}\n        triggerPolicy: {strategy: ALL_UPSTREAM_TASKS_DONE}", 1)
	err := validateBytes("enum.yaml", []byte(src))
	var ds diag.Diagnostics
	if !errors.As(err, &ds) {
		t.Fatalf("validate = %v, want diagnostics", err)
	}
	want := map[string]string{
		"components.comp-a.inputDefinitions.parameters.text.parameterType": `unknown value "STRINGG" (one of NUMBER_DOUBLE, NUMBER_INTEGER, STRING, BOOLEAN, LIST, STRUCT, TASK_FINAL_STATUS)`,
		"root.dag.tasks.a.triggerPolicy.strategy":                          `unknown value "ALL_UPSTREAM_TASKS_DONE" (one of ALL_UPSTREAM_TASKS_SUCCEEDED, ALL_UPSTREAM_TASKS_COMPLETED)`,
	}
	got := map[string]string{}
	for _, d := range ds {
		got[d.Path] = d.Msg
		if d.Pos.Line == 0 {
			t.Errorf("%s: no line", d)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}
	// The newer TASK_CONFIG type is known.
	ok := strings.Replace(irWith(nil), "{parameterType: STRING}", "{parameterType: TASK_CONFIG}", 1)
	if err := validateBytes("ok.yaml", []byte(ok)); err != nil {
		t.Errorf("TASK_CONFIG refused: %v", err)
	}
}
