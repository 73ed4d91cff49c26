package components

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlpipe/mlpipe/compiler"
)

var update = flag.Bool("update", false, "regenerate the helpers in component.py and the source inlined in component.yaml")

const (
	beginMark = "# --- kfpio: begin ---"
	endMark   = "# --- kfpio: end ---"
)

func componentDirs(t *testing.T) []string {
	t.Helper()
	matches, err := filepath.Glob("*/component.py")
	if err != nil || len(matches) == 0 {
		t.Fatalf("no components: %v", err)
	}
	var dirs []string
	for _, m := range matches {
		dirs = append(dirs, filepath.Dir(m))
	}
	return dirs
}

// withHelpers puts the shared helpers of kfpio.py between the markers of a
// component.py.
func withHelpers(t *testing.T, src string) string {
	t.Helper()
	lib, err := os.ReadFile("kfpio.py")
	if err != nil {
		t.Fatal(err)
	}
	l := string(lib)
	helpers := l[strings.Index(l, beginMark)+len(beginMark) : strings.Index(l, endMark)]
	i, j := strings.Index(src, beginMark), strings.Index(src, endMark)
	if i < 0 || j < i {
		t.Fatal("component.py lacks the kfpio markers")
	}
	return src[:i+len(beginMark)] + helpers + src[j:]
}

// inline returns component.yaml with the command's source block replaced
// by src, indented for the literal block.
func inline(t *testing.T, yaml, src string) string {
	t.Helper()
	lines := strings.Split(yaml, "\n")
	var out []string
	in := false
	for _, l := range lines {
		switch {
		case strings.TrimSpace(l) == "- |" && !in:
			out = append(out, l)
			for _, s := range strings.Split(strings.TrimRight(src, "\n"), "\n") {
				if s == "" {
					out = append(out, "")
				} else {
					out = append(out, "      "+s)
				}
			}
			in = true
			continue
		case in && strings.HasPrefix(l, "    args:"):
			in = false
		case in:
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// TestInlinedSourceIsCurrent: component.yaml runs exactly component.py,
// and every component.py carries the current shared helpers.
func TestInlinedSourceIsCurrent(t *testing.T) {
	for _, dir := range componentDirs(t) {
		pyPath, yamlPath := filepath.Join(dir, "component.py"), filepath.Join(dir, "component.yaml")
		py, err := os.ReadFile(pyPath)
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(yamlPath)
		if err != nil {
			t.Fatal(err)
		}
		wantPy := withHelpers(t, string(py))
		wantYAML := inline(t, string(y), "# generated from component.py by go test ./components -update\n"+wantPy)
		if *update {
			if err := os.WriteFile(pyPath, []byte(wantPy), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(yamlPath, []byte(wantYAML), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if wantPy != string(py) {
			t.Errorf("%s: the kfpio helpers are stale (run go test ./components -update)", pyPath)
		}
		if wantYAML != string(y) {
			t.Errorf("%s does not inline the current %s (run go test ./components -update)", yamlPath, pyPath)
		}
		c, err := compiler.LoadComponent(dir)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		if got := c.Container.Command[3]; !strings.Contains(got, strings.TrimSpace(strings.SplitN(wantPy, "\n", 2)[0])) {
			t.Errorf("%s: the inlined command does not start like component.py", dir)
		}
		if c.Dockerfile == "" {
			t.Errorf("%s has no Dockerfile", dir)
		}
	}
}

// TestPythonUnitTests runs each component's unit tests with python3.
func TestPythonUnitTests(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed for the example components' tests")
	}
	for _, dir := range componentDirs(t) {
		t.Run(dir, func(t *testing.T) {
			cmd := exec.Command(py, "-m", "unittest", "discover", "-s", filepath.Join(dir, "tests"), "-v")
			cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("python unit tests of %s failed: %v\n%s", dir, err, out)
			}
			if !strings.Contains(string(out), "OK") {
				t.Errorf("unexpected output:\n%s", out)
			}
		})
	}
}
