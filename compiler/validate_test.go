package compiler

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlpipe/mlpipe/internal/diag"
)

const echoComponent = `
name: echo
inputs:
- {name: msg, type: String}
- {name: n, type: Integer, default: '1'}
- {name: data, type: Dataset, optional: true}
- {name: datasets, type: "List[Dataset]", optional: true}
- {name: flags, type: List, optional: true}
outputs:
- {name: out, type: String}
- {name: count, type: Integer}
- {name: model, type: Model}
implementation:
  container:
    image: busybox
    command: [sh, -c, 'echo "$0"']
    args: [{inputValue: msg}, {outputPath: out}, {outputPath: count}, {outputPath: model}]
`

// TestPipelineValidationErrors checks that each kind of mistake is reported
// with its position and a clear message.
func TestPipelineValidationErrors(t *testing.T) {
	tests := []struct {
		name     string
		pipeline string
		want     []string // substrings of diagnostics, including "LINE:COL"
	}{
		{"yaml syntax", "name: x\ntasks: [unclosed\n", []string{"pipeline.yaml:2:"}},
		{"not a mapping", "- a\n- b\n", []string{"pipeline.yaml:1:1: expected a mapping at the top level"}},
		{"unknown key", "name: x\ntaks: {}\ntasks:\n  a: {component: echo.yaml, inputs: {msg: hi}}\n", []string{`2:1: unknown key "taks" in pipeline`}},
		{"unknown task key", "name: x\ntasks:\n  a: {component: echo.yaml, inputz: {msg: hi}}\n", []string{`3:29: unknown key "inputz"`}},
		{"bad pipeline name", "name: My_Pipe\ntasks:\n  a: {component: echo.yaml, inputs: {msg: hi}}\n", []string{`1:7: pipeline name "My_Pipe"`}},
		{"bad task name", "name: x\ntasks:\n  Bad Task: {component: echo.yaml, inputs: {msg: hi}}\n", []string{`3:3: task name "Bad Task"`}},
		{"reserved task name", "name: x\ntasks:\n  for-loop-1: {component: echo.yaml, inputs: {msg: hi}}\n", []string{"is reserved"}},
		{"duplicate key", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: hi}}\n  a: {component: echo.yaml, inputs: {msg: hi}}\n", []string{`4:3: mapping key "a" already defined`}},
		{"missing component", "name: x\ntasks:\n  a: {component: nope.yaml}\n", []string{"3:18: task \"a\": cannot load component", "nope.yaml"}},
		{"missing required input", "name: x\ntasks:\n  a: {component: echo.yaml}\n", []string{`3:3: task "a": missing required input "msg"`}},
		{"unknown input", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: hi, colour: red}}\n", []string{`has no input "colour" (inputs: msg, n, data, datasets, flags)`}},
		{"integer given a string", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: hi, n: ten}}\n", []string{`input "n": "ten" is not an Integer`}},
		{"string given an integer", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: 5}}\n", []string{`input "msg": number 5 is not a String (quote it to pass a string)`}},
		{"artifact given a literal", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: hi, data: /tmp/x}}\n", []string{`input "data" is an artifact (system.Dataset)`}},
		{"artifact vs parameter", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: hi}}\n  b: {component: echo.yaml, inputs: {msg: '${{ tasks.a.outputs.model }}'}}\n", []string{`input "msg" is a String parameter but ${{ tasks.a.outputs.model }} is an artifact`}},
		{"artifact type mismatch", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: hi}}\n  b: {component: echo.yaml, inputs: {msg: hi, data: '${{ tasks.a.outputs.model }}'}}\n", []string{`input "data" takes system.Dataset but ${{ tasks.a.outputs.model }} is system.Model`}},
		{"unknown task ref", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: '${{ tasks.zz.outputs.out }}'}}\n", []string{`unknown task "zz"`}},
		{"unknown output ref", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: hi}}\n  b: {component: echo.yaml, inputs: {msg: '${{ tasks.a.outputs.nope }}'}}\n", []string{`task "a" has no output "nope" (outputs: out, count, model)`}},
		{"unknown pipeline input", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: '${{ inputs.who }}'}}\n", []string{`unknown pipeline input "who"`}},
		{"bad reference", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: '${{ task.a }}'}}\n", []string{"unknown reference ${{ task.a }}"}},
		{"unterminated reference", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: 'x ${{ inputs.a'}}\n", []string{"unterminated reference"}},
		{"cycle", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: '${{ tasks.b.outputs.out }}'}}\n  b: {component: echo.yaml, inputs: {msg: '${{ tasks.a.outputs.out }}'}}\n", []string{"dependency cycle: a -> b -> a"}},
		{"self reference", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: '${{ tasks.a.outputs.out }}'}}\n", []string{`task "a" refers to its own output`}},
		{"after unknown", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: hi}, after: [b]}\n", []string{`after: unknown task "b"`}},
		{"bad CEL", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: hi}, when: 'inputs.x >>'}\n", []string{"when: invalid CEL"}},
		{"CEL type error", "name: x\ninputs: {n: {type: Integer}}\ntasks:\n  a: {component: echo.yaml, inputs: {msg: hi}, when: 'inputs.n == \"x\"'}\n", []string{"when: 1:10: found no matching overload for '_==_' applied to '(int, string)'"}},
		{"CEL not boolean", "name: x\ninputs: {n: {type: Integer}}\ntasks:\n  a: {component: echo.yaml, inputs: {msg: hi}, when: 'inputs.n + 1'}\n", []string{"must be a boolean expression"}},
		{"CEL unknown ref", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: hi}, when: 'tasks.b.outputs.out == \"y\"'}\n", []string{`unknown task "b"`}},
		{"CEL artifact", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: hi}}\n  b: {component: echo.yaml, inputs: {msg: hi}, when: 'tasks.a.outputs.model == \"y\"'}\n", []string{"is an artifact; conditions can only use parameters"}},
		{"for_each over a string", "name: x\ninputs: {s: {type: String}}\ntasks:\n  a: {component: echo.yaml, for_each: '${{ inputs.s }}', inputs: {msg: '${{ item }}'}}\n", []string{"for_each over inputs.s, which is a String, not a List"}},
		{"for_each over a scalar", "name: x\ntasks:\n  a: {component: echo.yaml, for_each: 5, inputs: {msg: hi}}\n", []string{"for_each must be a list"}},
		{"mixed items", "name: x\ntasks:\n  a: {component: echo.yaml, for_each: [1, a], inputs: {msg: hi}}\n", []string{"must all be of one type"}},
		{"item without loop", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: '${{ item }}'}}\n", []string{"only defined in a task with for_each"}},
		{"parallelism without loop", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: hi}, parallelism: 2}\n", []string{"parallelism needs for_each"}},
		{"fan-in into a single artifact", "name: x\ntasks:\n  a: {component: echo.yaml, for_each: [1, 2], inputs: {msg: hi}}\n  b: {component: echo.yaml, inputs: {msg: hi, data: '${{ tasks.a.outputs.model }}'}}\n", []string{"is a list (the output of a for_each task)"}},
		{"fan-in parameter into Integer", "name: x\ntasks:\n  a: {component: echo.yaml, for_each: [1, 2], inputs: {msg: hi}}\n  b: {component: echo.yaml, inputs: {msg: hi, n: '${{ tasks.a.outputs.count }}'}}\n", []string{"(the output of a for_each task is a List)"}},
		{"status outside finally", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: '${{ pipeline.status }}'}}\n", []string{"only defined in finally tasks"}},
		{"regular uses finally", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: '${{ tasks.f.outputs.out }}'}}\nfinally:\n  f: {component: echo.yaml, inputs: {msg: hi}}\n", []string{`cannot use the output of finally task "f"`}},
		{"finally loop", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: hi}}\nfinally:\n  f: {component: echo.yaml, inputs: {msg: hi}, for_each: [1]}\n", []string{"finally tasks cannot loop"}},
		{"bad resources", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: hi}, resources: {cpu: lots, memory: 4GB, gpu: 1.5}}\n", []string{"cpu must be a number of cores", "memory must be a quantity", "gpu must be a whole number"}},
		{"bad retry", "name: x\ntasks:\n  a: {component: echo.yaml, inputs: {msg: hi}, retry: {max: 2, backoff: soon}}\n", []string{"retry backoff must be a duration"}},
		{"bad input type", "name: x\ninputs: {a: {type: Dataset}}\ntasks:\n  t: {component: echo.yaml, inputs: {msg: hi}}\n", []string{`type must be String, Integer, Float, Boolean, List or Struct, not "Dataset"`}},
		{"default of wrong type", "name: x\ninputs: {a: {type: List, default: 3}}\ntasks:\n  t: {component: echo.yaml, inputs: {msg: hi}}\n", []string{`default of input "a": number 3 is not a List`}},
		{"nested reference", "name: x\ntasks:\n  t: {component: echo.yaml, inputs: {msg: hi, flags: ['${{ inputs.a }}']}}\n", []string{"cannot be nested inside lists"}},
		{"bad output", "name: x\noutputs: {o: constant}\ntasks:\n  t: {component: echo.yaml, inputs: {msg: hi}}\n", []string{`pipeline output "o" must be a reference`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "echo.yaml", echoComponent)
			write(t, dir, "pipeline.yaml", tc.pipeline)
			err := ValidateFile(filepath.Join(dir, "pipeline.yaml"))
			var ds diag.Diagnostics
			if !errors.As(err, &ds) {
				t.Fatalf("err = %v (%T), want diag.Diagnostics", err, err)
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("diagnostics lack %q:\n%s", w, msg)
				}
			}
			for _, d := range ds {
				if d.File == "" {
					t.Errorf("diagnostic without a file: %v", d)
				}
			}
		})
	}
}

func TestAllProblemsReportedAtOnce(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "echo.yaml", echoComponent)
	write(t, dir, "pipeline.yaml", "name: x\ntasks:\n  a: {component: echo.yaml}\n  b: {component: echo.yaml, inputs: {msg: 1}}\n  c: {component: nope.yaml}\n")
	var ds diag.Diagnostics
	if err := ValidateFile(filepath.Join(dir, "pipeline.yaml")); !errors.As(err, &ds) || len(ds) != 3 {
		t.Fatalf("got %d diagnostics, want 3: %v", len(ds), err)
	}
}

func TestComponentValidationErrors(t *testing.T) {
	tests := []struct {
		name, component string
		want            []string
	}{
		{"no implementation", "name: c\n", []string{"not a pipeline"}},
		{"no image", "name: c\nimplementation: {container: {command: [x]}}\n", []string{"container has no image"}},
		{"unknown placeholder", "name: c\nimplementation: {container: {image: i, args: [{inputVal: x}]}}\n", []string{`unknown placeholder "inputVal"`}},
		{"unknown input in placeholder", "name: c\ninputs: [{name: a}]\nimplementation: {container: {image: i, args: [{inputValue: b}]}}\n", []string{`"b" is not an input of the component`}},
		{"unknown output", "name: c\nimplementation: {container: {image: i, args: [{outputPath: o}]}}\n", []string{`"o", which is not an output`}},
		{"inputValue on artifact", "name: c\ninputs: [{name: d, type: Dataset}]\nimplementation: {container: {image: i, args: [{inputValue: d}]}}\n", []string{"inputValue needs a parameter input"}},
		{"bad default", "name: c\ninputs: [{name: n, type: Integer, default: abc}]\nimplementation: {container: {image: i}}\n", []string{`default of "n": "abc" is not an integer`}},
		{"duplicate input", "name: c\ninputs: [{name: a}, {name: A}]\nimplementation: {container: {image: i}}\n", []string{"duplicate input name"}},
		{"if without isPresent", "name: c\ninputs: [{name: a}]\nimplementation: {container: {image: i, args: [{if: {cond: {inputValue: a}, then: [x]}}]}}\n", []string{"only cond: {isPresent: NAME} is supported"}},
		{"graph component", "name: c\nimplementation: {graph: {tasks: {}}}\n", []string{"graph components (KFP v1) are not supported"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, "component.yaml", tc.component)
			err := ValidateFile(filepath.Join(dir, "component.yaml"))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestComponentPlaceholderConversion(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "component.yaml", `
name: Train Model
inputs:
- {name: Training Data, type: Dataset}
- {name: raw file, type: String}
- {name: lr, type: Float, default: '0.1'}
- {name: extra, type: String, optional: true}
outputs:
- {name: model, type: Model}
- {name: score, type: Float}
implementation:
  container:
    image: img
    command: [python, train.py]
    args:
    - {inputPath: Training Data}
    - {inputPath: raw file}
    - {inputUri: Training Data}
    - {concat: [--lr=, {inputValue: lr}]}
    - {if: {cond: {isPresent: extra}, then: [--extra, {inputValue: extra}], else: --no-extra}}
    - {outputPath: model}
    - {outputUri: model}
    - {outputPath: score}
    - {executorInput: null}
`)
	c, err := LoadComponent(filepath.Join(dir, "component.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"{{$.inputs.artifacts['training_data'].path}}",
		"{{$.inputs.artifacts['raw_file'].path}}",
		"{{$.inputs.artifacts['training_data'].uri}}",
		`{"Concat":["--lr=","{{$.inputs.parameters['lr']}}"]}`,
		`{"IfPresent":{"Else":"--no-extra","InputName":"extra","Then":["--extra","{{$.inputs.parameters['extra']}}"]}}`,
		"{{$.outputs.artifacts['model'].path}}",
		"{{$.outputs.artifacts['model'].uri}}",
		"{{$.outputs.parameters['score'].output_file}}",
		"{{$}}",
	}
	if got := c.Container.Args; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("args:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// An input read as a file becomes an artifact, as in the KFP SDK.
	if ty := c.Input("raw_file").Type; !ty.IsArtifact() {
		t.Errorf("raw_file type = %v, want an artifact", ty)
	}
	if c.Input("lr").Default != 0.1 {
		t.Errorf("lr default = %v", c.Input("lr").Default)
	}
}

func TestHostileInputIsAnErrorNotACrash(t *testing.T) {
	deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	bomb := "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
	for name, src := range map[string]string{
		"deep nesting":     "name: x\ntasks: " + deep + "\n",
		"alias bomb":       bomb,
		"binary garbage":   "\x00\x01\xff\xfe name: x",
		"unicode":          "name: ünïcødé\ntasks:\n  ✓: {component: c.yaml}\n",
		"wrong types":      "name: [1]\ndescription: {a: b}\ninputs: [1, 2]\ntasks: [a]\nfinally: 3\n",
		"huge number":      "name: x\ninputs: {a: {type: Integer, default: 99999999999999999999999999}}\ntasks: {}\n",
		"empty":            "",
		"only comments":    "# nothing\n",
		"tab indentation":  "name: x\ntasks:\n\ta: {}\n",
		"json ir garbage":  `{"root": 5, "pipelineInfo": [1], "components": "x"}`,
		"json deep":        `{"root":` + strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000) + "}",
		"ir wrong types":   "pipelineInfo: {name: 3}\nroot: {dag: {tasks: {a: {componentRef: 7}}}}\nschemaVersion: [2]\n",
		"ir bad executors": "pipelineInfo: {name: x}\nroot: {dag: {tasks: {}}}\ndeploymentSpec: {executors: {e: {container: {command: 5}}}}\n",
		// Found by FuzzParsePipeline: reading a device never ends.
		"component is a device": "name: x\ntasks:\n  a: {component: /dev/zero}\n  b: {component: /dev/stdin}\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "pipeline.yaml")
			if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			err := ValidateFile(p)
			if err == nil {
				t.Fatal("accepted")
			}
			if len(err.Error()) > 100000 {
				t.Errorf("error message is %d bytes", len(err.Error()))
			}
		})
	}
}
