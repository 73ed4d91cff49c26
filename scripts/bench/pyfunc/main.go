// Command pyfunc writes what scripts/bench/pyfunc.sh measures: the wheels of
// the stand-in kfp runtime and of a small package (offline, no PyPI), and
// an IR of a chain of N KFP Python function components in the SDK's
// compiled shape, each with that package in packages_to_install.
//
//	go run ./scripts/bench/pyfunc WHEEL_DIR IR_FILE N IMAGE
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/mlpipe/mlpipe/internal/pywheel"
)

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: pyfunc WHEEL_DIR IR_FILE N IMAGE")
		os.Exit(2)
	}
	dir, file, image := os.Args[1], os.Args[2], os.Args[4]
	n, err := strconv.Atoi(os.Args[3])
	if err != nil || n < 1 {
		fmt.Fprintln(os.Stderr, "N must be a positive number")
		os.Exit(2)
	}
	if err := run(dir, file, n, image); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(dir, file string, n int, image string) error {
	if _, err := pywheel.Write(dir, pywheel.KFP("2.7.0")); err != nil {
		return err
	}
	if _, err := pywheel.Write(dir, pywheel.Package{Name: "mlpipe-testpkg", Version: "1.0.0", Files: map[string][]byte{
		"mlpipe_testpkg/__init__.py": []byte("def answer():\n    return 42\n"),
	}}); err != nil {
		return err
	}
	comps, execs, tasks := map[string]any{}, map[string]any{}, map[string]any{}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("step%d", i)
		c := pywheel.Component{
			FuncSource: "def step(x: int) -> int:\n    import mlpipe_testpkg\n    return x + mlpipe_testpkg.answer()\n",
			Function:   "step", KFPVersion: "2.7.0", Packages: []string{"mlpipe-testpkg"},
		}
		comps["comp-"+name] = map[string]any{"executorLabel": "exec-" + name,
			"inputDefinitions":  map[string]any{"parameters": map[string]any{"x": map[string]any{"parameterType": "NUMBER_INTEGER"}}},
			"outputDefinitions": map[string]any{"parameters": map[string]any{"Output": map[string]any{"parameterType": "NUMBER_INTEGER"}}}}
		execs["exec-"+name] = map[string]any{"container": map[string]any{"image": image, "command": c.Command(), "args": c.Args()}}
		x := map[string]any{"runtimeValue": map[string]any{"constant": 0}}
		t := map[string]any{"taskInfo": map[string]any{"name": name}, "componentRef": map[string]any{"name": "comp-" + name},
			"cachingOptions": map[string]any{"enableCache": true}}
		if i > 1 {
			prev := fmt.Sprintf("step%d", i-1)
			x = map[string]any{"taskOutputParameter": map[string]any{"producerTask": prev, "outputParameterKey": "Output"}}
			t["dependentTasks"] = []string{prev}
		}
		t["inputs"] = map[string]any{"parameters": map[string]any{"x": x}}
		tasks[name] = t
	}
	ir := map[string]any{"pipelineInfo": map[string]any{"name": "pyfunc-bench"}, "schemaVersion": "2.1.0", "sdkVersion": "kfp-2.7.0",
		"components": comps, "deploymentSpec": map[string]any{"executors": execs}, "root": map[string]any{"dag": map[string]any{"tasks": tasks}}}
	b, err := json.MarshalIndent(ir, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}
