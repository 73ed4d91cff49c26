package kfpir

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mlpipe/mlpipe/internal/diag"
)

// hostileIR is a minimal valid IR whose names are replaced by the test.
const hostileIR = `pipelineInfo: {name: p}
schemaVersion: 2.1.0
deploymentSpec:
  executors:
    EXEC:
      container: {image: busybox, command: [sh, -c, "true"]}
components:
  COMP:
    executorLabel: EXEC
    inputDefinitions:
      parameters:
        INPUT: {parameterType: STRING}
    outputDefinitions:
      artifacts:
        OUTPUT: {artifactType: {schemaTitle: system.Artifact, schemaVersion: 0.0.1}}
root:
  dag:
    tasks:
      TASK:
        taskInfo: {name: DISPLAY}
        componentRef: {name: COMP}
        inputs:
          parameters:
            INPUT: {runtimeValue: {constant: x}}
`

func irWith(repl map[string]string) string {
	s := hostileIR
	for _, k := range []string{"EXEC", "COMP", "INPUT", "OUTPUT", "TASK", "DISPLAY"} {
		v, ok := repl[k]
		if !ok {
			v = map[string]string{"EXEC": "exec-a", "COMP": "comp-a", "INPUT": "text", "OUTPUT": "out", "TASK": "a", "DISPLAY": "a"}[k]
		}
		s = strings.ReplaceAll(s, k, v)
	}
	return s
}

func TestSecurityHostileIRNamesAreRefused(t *testing.T) {
	tests := []struct {
		name  string
		repl  map[string]string
		field string // the diagnostic's field path
		line  int
	}{
		{"task key climbing out", map[string]string{"TASK": `"../../../../victim"`}, "root.dag.tasks.../../../../victim", 19},
		{"task key dot-dot", map[string]string{"TASK": `".."`}, "root.dag.tasks...", 19},
		{"absolute task key", map[string]string{"TASK": `"/etc/cron.d/x"`}, "root.dag.tasks./etc/cron.d/x", 19},
		{"task key with a slash", map[string]string{"TASK": `"sub/s"`}, "root.dag.tasks.sub/s", 19},
		{"task key like a loop iteration", map[string]string{"TASK": `"t[0]"`}, "root.dag.tasks.t[0]", 19},
		{"task key with a dot", map[string]string{"TASK": `"t.0"`}, "root.dag.tasks.t.0", 19},
		{"output name climbing out", map[string]string{"OUTPUT": `"../../x"`}, "components.comp-a.outputDefinitions.artifacts.../../x", 15},
		{"input name with a slash", map[string]string{"INPUT": `"a/b"`}, "components.comp-a.inputDefinitions.parameters.a/b", 12},
		{"component name", map[string]string{"COMP": `"../c"`}, "components.../c", 8},
		{"executor label", map[string]string{"EXEC": `"e/../x"`}, "deploymentSpec.executors.e/../x", 5},
		{"display name with control characters", map[string]string{"DISPLAY": `"a\e[2Jb"`}, "root.dag.tasks.a.taskInfo.name", 20},
		{"empty-ish name", map[string]string{"TASK": `"-x"`}, "root.dag.tasks.-x", 19},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadIRBytes("hostile.yaml", []byte(irWith(tc.repl)))
			var ds diag.Diagnostics
			if !errors.As(err, &ds) {
				t.Fatalf("LoadIRBytes = %v, want diagnostics", err)
			}
			found := false
			for _, d := range ds {
				if d.Path == tc.field {
					found = true
					if d.Pos.Line != tc.line || d.File != "hostile.yaml" {
						t.Errorf("diagnostic %q at %s line %d, want line %d", d.Msg, d.File, d.Pos.Line, tc.line)
					}
				}
			}
			if !found {
				t.Errorf("no diagnostic for %s in:\n%v", tc.field, err)
			}
			// ValidateFile (mlpipe validate) says the same.
			if validateBytes("hostile.yaml", []byte(irWith(tc.repl))) == nil {
				t.Error("validate accepted it")
			}
		})
	}
	// Names the KFP SDK writes stay accepted, display names with spaces too.
	ok := map[string]string{"TASK": "for-loop-2", "COMP": "comp-for-loop-2", "INPUT": "pipelinechannel--loop-item-param-1",
		"OUTPUT": "Output_2", "EXEC": "exec-train-model", "DISPLAY": `"Train the model (GPU)"`}
	if _, err := LoadIRBytes("ok.yaml", []byte(irWith(ok))); err != nil {
		t.Errorf("SDK-style names refused: %v", err)
	}
}

// validateBytes runs what `mlpipe validate` runs on IR bytes.
func validateBytes(file string, src []byte) error {
	ir, err := LoadIRBytes(file, src)
	if err != nil {
		return err
	}
	return ValidateIR(ir)
}

func TestSafeName(t *testing.T) {
	good := []string{"a", "train", "for-loop-2", "pipelinechannel--a-b", "Output", "_x", "A_b-9", strings.Repeat("a", MaxNameLen)}
	bad := []string{"", ".", "..", "../x", "a/b", "/abs", "t[0]", "t.0", "-x", "a b", "a\x00", "é", "a\nb", strings.Repeat("a", MaxNameLen+1)}
	var got []string
	for _, n := range good {
		if !SafeName(n) {
			got = append(got, "refused "+n)
		}
	}
	for _, n := range bad {
		if SafeName(n) {
			got = append(got, "accepted "+n)
		}
	}
	if diff := cmp.Diff([]string(nil), got); diff != "" {
		t.Error(diff)
	}
}

// A DAG component whose task refers back to it, directly or through
// another, is refused with the cycle named, at the line of the reference.
func TestSecurityComponentReferenceCycle(t *testing.T) {
	src := `pipelineInfo: {name: p}
schemaVersion: 2.1.0
deploymentSpec:
  executors:
    exec-a: {container: {image: busybox, command: ["true"]}}
components:
  comp-a: {executorLabel: exec-a}
  comp-outer:
    dag:
      tasks:
        inner: {taskInfo: {name: inner}, componentRef: {name: comp-inner}}
  comp-inner:
    dag:
      tasks:
        leaf: {taskInfo: {name: leaf}, componentRef: {name: comp-a}}
        again: {taskInfo: {name: again}, componentRef: {name: comp-outer}}
root:
  dag:
    tasks:
      outer: {taskInfo: {name: outer}, componentRef: {name: comp-outer}}
`
	err := validateBytes("cycle.yaml", []byte(src))
	var ds diag.Diagnostics
	if !errors.As(err, &ds) || len(ds) != 1 {
		t.Fatalf("ValidateIR = %v, want one diagnostic", err)
	}
	want := diag.Diagnostic{File: "cycle.yaml", Pos: ds[0].Pos, Path: "components.comp-outer.dag.tasks.inner.componentRef.name",
		Msg: "component reference cycle: comp-inner -> comp-outer -> comp-inner (a DAG component may not contain itself)"}
	if diff := cmp.Diff(want, ds[0]); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if ds[0].Pos.Line != 11 {
		t.Errorf("line %d, want 11", ds[0].Pos.Line)
	}
	// A component used twice without a cycle is fine.
	ok := strings.Replace(src, "comp-outer}}\nroot", "comp-a}}\nroot", 1)
	if err := validateBytes("ok.yaml", []byte(ok)); err != nil {
		t.Errorf("no cycle, but: %v", err)
	}
}

// fanBomb is a small IR whose components each call the next twice: no
// cycle, 40 levels, 2^40 tasks unfolded.
func fanBomb(levels int) string {
	var b strings.Builder
	b.WriteString("pipelineInfo: {name: p}\nschemaVersion: 2.1.0\ndeploymentSpec:\n  executors:\n    exec-leaf: {container: {image: busybox, command: [\"true\"]}}\ncomponents:\n  comp-leaf: {executorLabel: exec-leaf}\n")
	for i := 0; i < levels; i++ {
		next := "comp-leaf"
		if i+1 < levels {
			next = fmt.Sprintf("comp-l%d", i+1)
		}
		fmt.Fprintf(&b, "  comp-l%d:\n    dag:\n      tasks:\n        a: {taskInfo: {name: a}, componentRef: {name: %s}}\n        b: {taskInfo: {name: b}, componentRef: {name: %s}}\n", i, next, next)
	}
	b.WriteString("root:\n  dag:\n    tasks:\n      top: {taskInfo: {name: top}, componentRef: {name: comp-l0}}\n")
	return b.String()
}

func TestSecurityFanOutBombIsRefused(t *testing.T) {
	// testdata/fanbomb-40.yaml (planned in the compiler's tests) is this one.
	if b, err := os.ReadFile("testdata/fanbomb-40.yaml"); err != nil || string(b) != fanBomb(40) {
		t.Fatalf("testdata/fanbomb-40.yaml is not fanBomb(40) (%v)", err)
	}
	ir, err := LoadIRBytes("bomb.yaml", []byte(fanBomb(40)))
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateIR(ir); err == nil || !strings.Contains(err.Error(), "unfolds into more than") {
		t.Errorf("ValidateIR = %v", err)
	}
	// A small one is fine and counted exactly.
	small, err := LoadIRBytes("small.yaml", []byte(fanBomb(5)))
	if err != nil {
		t.Fatal(err)
	}
	if n := ExpandedTasks(small.Spec); n != 32 {
		t.Errorf("ExpandedTasks = %d, want 32", n)
	}
	if err := ValidateIR(small); err != nil {
		t.Errorf("ValidateIR(small) = %v", err)
	}
}
