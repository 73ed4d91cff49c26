package compiler

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/mlpipe/mlpipe/kfpir"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"
)

var update = flag.Bool("update", false, "rewrite the golden IR files")

// examplePipelines lists every pipeline under pipelines/.
func examplePipelines(t testing.TB) []string {
	t.Helper()
	dirs, err := filepath.Glob("../pipelines/*/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("no example pipelines found")
	}
	return dirs
}

func compileFile(t testing.TB, path string) *pb.PipelineSpec {
	t.Helper()
	p, err := LoadPipeline(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	spec, err := Compile(p)
	if err != nil {
		t.Fatalf("compile %s: %v", path, err)
	}
	return spec
}

// normalised renders IR as indented JSON with sorted keys (protojson's
// bytes are unstable by design).
func normalised(t *testing.T, spec *pb.PipelineSpec) []byte {
	t.Helper()
	b, err := kfpir.Marshal(spec, kfpir.JSON)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGoldenIR(t *testing.T) {
	for _, path := range examplePipelines(t) {
		name := filepath.Base(filepath.Dir(path))
		t.Run(name, func(t *testing.T) {
			got := normalised(t, compileFile(t, path))
			golden := filepath.Join("testdata", "golden", name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./compiler -run TestGoldenIR -update)", err)
			}
			var w, g any
			if err := json.Unmarshal(want, &w); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(w, g); diff != "" {
				t.Errorf("IR differs from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}

func TestCompileIsDeterministic(t *testing.T) {
	for _, path := range examplePipelines(t) {
		a, err := kfpir.Marshal(compileFile(t, path), kfpir.YAML)
		if err != nil {
			t.Fatal(err)
		}
		b, err := kfpir.Marshal(compileFile(t, path), kfpir.YAML)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: two compilations differ", path)
		}
	}
}

// TestRoundTripAndStrictParse: what we emit loads back identically, parses
// strictly with the pinned proto (KFP API servers reject unknown fields)
// and validates.
func TestRoundTripAndStrictParse(t *testing.T) {
	for _, path := range examplePipelines(t) {
		spec := compileFile(t, path)
		for _, f := range []kfpir.Format{kfpir.YAML, kfpir.JSON} {
			b, err := kfpir.Marshal(spec, f)
			if err != nil {
				t.Fatal(err)
			}
			ir, err := kfpir.LoadIRBytes(path+"."+string(f), b)
			if err != nil {
				t.Fatalf("%s (%s): load: %v", path, f, err)
			}
			if diff := cmp.Diff(spec, ir.Spec, protocmp.Transform()); diff != "" {
				t.Errorf("%s (%s): round trip (-compiled +loaded):\n%s", path, f, diff)
			}
			if err := kfpir.ValidateIR(ir); err != nil {
				t.Errorf("%s (%s): %v", path, f, err)
			}
		}
		js, _ := kfpir.Marshal(spec, kfpir.JSON)
		if err := (protojson.UnmarshalOptions{}).Unmarshal(js, &pb.PipelineSpec{}); err != nil {
			t.Errorf("%s: strict parse with the pinned proto: %v", path, err)
		}
	}
}

func TestEmittedIRFollowsBackendRules(t *testing.T) {
	for _, path := range examplePipelines(t) {
		spec := compileFile(t, path)
		if spec.SchemaVersion != "2.1.0" || spec.PipelineInfo.GetName() == "" {
			t.Errorf("%s: schemaVersion %q name %q", path, spec.SchemaVersion, spec.PipelineInfo.GetName())
		}
		check := func(where string, cs *pb.ComponentSpec) {
			for key, task := range cs.GetDag().GetTasks() {
				if task.GetTaskInfo().GetName() == "" {
					t.Errorf("%s: %s.%s has no taskInfo.name", path, where, key)
				}
				callee := spec.Components[task.GetComponentRef().GetName()]
				isExec := callee.GetExecutorLabel() != ""
				if isExec && task.CachingOptions == nil {
					t.Errorf("%s: executor task %s.%s has no cachingOptions", path, where, key)
				}
				deps := map[string]bool{}
				for _, d := range task.DependentTasks {
					deps[d] = true
				}
				for _, d := range kfpir.IRDependencies(task) {
					if !deps[d] {
						t.Errorf("%s: %s.%s reads from %s but dependentTasks lacks it", path, where, key, d)
					}
				}
			}
		}
		check("root", spec.Root)
		for n, c := range spec.Components {
			check(n, c)
		}
	}
}

func TestCompiledControlFlowShape(t *testing.T) {
	spec := compileFile(t, "../pipelines/control-flow/pipeline.yaml")
	root := spec.Root.GetDag().GetTasks()
	report := root["report"]
	if report.GetTriggerPolicy().GetStrategy() != pb.PipelineTaskSpec_TriggerPolicy_ALL_UPSTREAM_TASKS_COMPLETED {
		t.Errorf("finally task strategy = %v", report.GetTriggerPolicy().GetStrategy())
	}
	if got := report.GetInputs().GetParameters()["status"].GetTaskFinalStatus().GetProducerTask(); got != "exit-handler-1" {
		t.Errorf("status producer = %q", got)
	}
	body := spec.Components["comp-exit-handler-1"].GetDag().GetTasks()
	loop := body["for-loop-2"]
	if loop.GetIteratorPolicy().GetParallelismLimit() != 2 {
		t.Errorf("parallelismLimit = %d", loop.GetIteratorPolicy().GetParallelismLimit())
	}
	if got := loop.GetParameterIterator().GetItems().GetInputParameter(); got != "pipelinechannel--shards" {
		t.Errorf("loop items input = %q", got)
	}
	// Fan-in: the loop body exposes the square output as a LIST.
	if pt := spec.Components["comp-for-loop-2"].GetOutputDefinitions().GetParameters()["pipelinechannel--square-y"].GetParameterType(); pt != pb.ParameterType_LIST {
		t.Errorf("collected output type = %v", pt)
	}
	cond := body["condition-3"]
	want := `int(inputs.parameter_values["pipelinechannel--sum-total"]) > int(inputs.parameter_values["pipelinechannel--threshold"])`
	if got := cond.GetTriggerPolicy().GetCondition(); got != want {
		t.Errorf("condition = %q, want %q", got, want)
	}
	celebrate := spec.Components["comp-condition-3"].GetDag().GetTasks()["celebrate"]
	msg := celebrate.GetInputs().GetParameters()["message"].GetRuntimeValue().GetConstant().GetStringValue()
	if !strings.Contains(msg, "{{$.inputs.parameters['pipelinechannel--sum-total']}}") {
		t.Errorf("template constant = %q", msg)
	}
	flaky := body["flaky"]
	if flaky.GetRetryPolicy().GetMaxRetryCount() != 2 || flaky.GetCachingOptions().GetEnableCache() {
		t.Errorf("flaky retry %v cache %v", flaky.GetRetryPolicy(), flaky.GetCachingOptions())
	}
	if spec.Components["comp-quickstart"].GetDag() == nil {
		t.Errorf("the sub-pipeline is not a DAG component")
	}
}

func TestResourcesAndEnvOnExecutor(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "c.yaml", "name: train\nimplementation: {container: {image: img, command: [x], env: {A: '1'}}}\n")
	write(t, dir, "pipeline.yaml", `
name: res
tasks:
  t1: {component: c.yaml, resources: {cpu: 500m, memory: 4Gi, gpu: 2, gpu_type: NVIDIA_TESLA_A100}, env: {B: two}}
  t2: {component: c.yaml}
  t3: {component: c.yaml}
`)
	spec := compileFile(t, filepath.Join(dir, "pipeline.yaml"))
	ir, err := kfpir.FromSpec("x", spec)
	if err != nil {
		t.Fatal(err)
	}
	// t2 and t3 share a component; t1 has its own (other settings).
	if n := len(spec.Components); n != 2 {
		t.Errorf("%d components, want 2 (de-duplicated)", n)
	}
	e := ir.Executors["exec-train"]
	if e == nil {
		e = ir.Executors["exec-train-2"]
	}
	var with *kfpir.Container
	for _, ex := range ir.Executors {
		if ex.Container.Resources.AcceleratorCount != "" {
			with = ex.Container
		}
	}
	if with == nil {
		t.Fatal("no executor carries the resources")
	}
	wantRes := kfpir.Resources{CPULimit: "0.5", CPURequest: "0.5", MemoryLimit: "4.294967296G", MemoryRequest: "4.294967296G", AcceleratorType: "NVIDIA_TESLA_A100", AcceleratorCount: "2"}
	if diff := cmp.Diff(wantRes, with.Resources); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]kfpir.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "two"}}, with.Env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
}

func write(t testing.TB, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFromSpecEqualsWriteAndLoad: the in-memory IR of a compiled pipeline
// is what loading its written IR gives.
func TestFromSpecEqualsWriteAndLoad(t *testing.T) {
	for _, path := range examplePipelines(t) {
		t.Run(filepath.Base(filepath.Dir(path)), func(t *testing.T) {
			spec := compileFile(t, path)
			direct, err := kfpir.FromSpec(path, spec)
			if err != nil {
				t.Fatal(err)
			}
			b, err := kfpir.Marshal(spec, kfpir.YAML)
			if err != nil {
				t.Fatal(err)
			}
			loaded, err := kfpir.LoadIRBytes(path, b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(loaded.Spec, direct.Spec, protocmp.Transform()); diff != "" {
				t.Errorf("Spec (-loaded +direct):\n%s", diff)
			}
			if diff := cmp.Diff(loaded.Executors, direct.Executors); diff != "" {
				t.Errorf("Executors (-loaded +direct):\n%s", diff)
			}
			if diff := cmp.Diff([]any{loaded.CacheKeys, loaded.Literals, loaded.TaskConfig}, []any{direct.CacheKeys, direct.Literals, direct.TaskConfig}); diff != "" {
				t.Errorf("extensions (-loaded +direct):\n%s", diff)
			}
			lj, _ := json.Marshal(loaded.Raw)
			dj, _ := json.Marshal(direct.Raw)
			if !bytes.Equal(lj, dj) {
				t.Errorf("Raw differs:\nloaded %s\ndirect %s", lj, dj)
			}
		})
	}
}
