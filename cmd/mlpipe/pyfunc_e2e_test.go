package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlpipe/mlpipe/internal/pywheel"
)

// pyWheels writes the wheels a test's Python function components install
// (the stand-in kfp runtime and mlpipe-testpkg) into a directory, and
// points pip at it, offline: PIP_FIND_LINKS and PIP_NO_INDEX.
func pyWheels(t *testing.T, c *cli) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := pywheel.Write(dir, pywheel.KFP("2.7.0")); err != nil {
		t.Fatal(err)
	}
	if _, err := pywheel.Write(dir, pywheel.Package{Name: "mlpipe-testpkg", Version: "1.0.0", Files: map[string][]byte{
		"mlpipe_testpkg/__init__.py": []byte("def answer():\n    return 42\n"),
	}}); err != nil {
		t.Fatal(err)
	}
	c.env = append(c.env, "PIP_FIND_LINKS="+dir, "PIP_NO_INDEX=1")
	return dir
}

// requirePython returns the host's python3 with venv, or skips (fails
// with MLPIPE_REQUIRE_PYTHON=1).
func requirePython(t *testing.T) {
	t.Helper()
	err := exec.Command("python3", "-c", "import venv, ensurepip").Run()
	if err == nil {
		return
	}
	if os.Getenv("MLPIPE_REQUIRE_PYTHON") == "1" {
		t.Fatalf("MLPIPE_REQUIRE_PYTHON=1 but python3 with venv and ensurepip is not usable: %v", err)
	}
	t.Skipf("python3 with venv is not usable: %v", err)
}

// TestPythonFunctionComponentsProcess runs KFP Python function components
// (testdata/pyfunc.yaml, in the SDK's compiled shape) with the process
// executor: the first run makes one virtual environment per set of
// packages under the state directory, the second reuses them, offline, and
// nothing is installed into the host's own Python.
func TestPythonFunctionComponentsProcess(t *testing.T) {
	requirePython(t)
	c := newCLI(t)
	pyWheels(t, c)
	hostBefore, _ := exec.Command("python3", "-m", "pip", "list", "--format=freeze").Output()

	first := c.mustRun("run", "cmd/mlpipe/testdata/pyfunc.yaml", "--executor", "process")
	if n := strings.Count(first.stdout+first.stderr, "making the virtual environment"); n != 2 {
		t.Errorf("first run made %d virtual environments, want 2 (one per set of packages):\n%s%s", n, first.stdout, first.stderr)
	}
	venvs, _ := filepath.Glob(filepath.Join(c.state, "venvs", "*", ".mlpipe-complete"))
	if len(venvs) != 2 {
		t.Errorf("venvs: %v", venvs)
	}
	s := c.show("latest")
	if s.State != "SUCCEEDED" {
		t.Fatalf("run %s", s.State)
	}
	for _, tk := range s.Tasks {
		if tk.Name == "use-pkg" && tk.Outputs.Parameters["Output"] != float64(45) {
			t.Errorf("use-pkg Output = %v, want 42 + (1+2)", tk.Outputs.Parameters["Output"])
		}
	}
	second := c.mustRun("run", "cmd/mlpipe/testdata/pyfunc.yaml", "--executor", "process", "--no-cache")
	if strings.Contains(second.stdout+second.stderr, "making the virtual environment") {
		t.Errorf("the second run made a virtual environment again:\n%s%s", second.stdout, second.stderr)
	}
	plan := c.mustRun("plan", "cmd/mlpipe/testdata/pyfunc.yaml").stdout
	if !strings.Contains(plan, "python: kfp==2.7.0 mlpipe-testpkg (+1 conditional); installed in "+filepath.Join(c.state, "venvs")) {
		t.Errorf("plan does not say the packages are installed:\n%s", plan)
	}
	hostAfter, _ := exec.Command("python3", "-m", "pip", "list", "--format=freeze").Output()
	if string(hostBefore) != string(hostAfter) {
		t.Errorf("the host's Python changed:\nbefore:\n%s\nafter:\n%s", hostBefore, hostAfter)
	}
}

// TestPythonFunctionComponentMissingPackage: a package no index has fails
// the task before it starts, with one message that names the component,
// the package and the settings to change.
func TestPythonFunctionComponentMissingPackage(t *testing.T) {
	requirePython(t)
	c := newCLI(t)
	pyWheels(t, c)
	b, err := os.ReadFile(filepath.Join(c.dir, "cmd/mlpipe/testdata/pyfunc.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ir := filepath.Join(t.TempDir(), "missing.yaml")
	if err := os.WriteFile(ir, []byte(strings.ReplaceAll(string(b), "'mlpipe-testpkg'", "'mlpipe-no-such-package'")), 0o644); err != nil {
		t.Fatal(err)
	}
	r := c.run("run", ir, "--executor", "process")
	if r.code == 0 {
		t.Fatal("the run succeeded")
	}
	s := c.show("latest")
	for _, tk := range s.Tasks {
		if tk.Name != "use-pkg" {
			continue
		}
		msg := tk.Reason
		for _, want := range []string{"component comp-use-pkg", "mlpipe-no-such-package", "PIP_INDEX_URL", "python.pip_conf"} {
			if !strings.Contains(msg, want) {
				t.Errorf("the error does not name %q: %s", want, msg)
			}
		}
		if tk.Attempts != 0 {
			t.Errorf("the step ran %d times", tk.Attempts)
		}
	}
}
