//go:build docker

package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPythonFunctionComponentsDocker runs KFP Python function components
// (testdata/pyfunc.yaml, the SDK's compiled shape) in containers: the first
// run derives one image per (base image, packages) from the locally made
// Python image, offline from a wheel directory; the second run derives
// nothing and its steps' own pip prologue installs nothing (there is no
// index to reach: it would fail). The pip settings, which may hold tokens,
// are in no image.
func TestPythonFunctionComponentsDocker(t *testing.T) {
	c, _ := dockerCLI(t)
	if out, err := exec.Command(filepath.Join(c.dir, "scripts", "base-images.sh"), "python").CombinedOutput(); err != nil {
		t.Fatalf("scripts/base-images.sh python: %v\n%s", err, out)
	}
	pyWheels(t, c)
	const token = "tok3n-never-stored"
	c.env = append(c.env, "PIP_EXTRA_INDEX_URL=http://user:"+token+"@127.0.0.1:9/simple")

	first := c.mustRun("run", "cmd/mlpipe/testdata/pyfunc.yaml")
	out := first.stdout + first.stderr
	tags := regexp.MustCompile(`derived (mlpipe/pyfunc:[0-9a-f]{16})`).FindAllStringSubmatch(out, -1)
	if len(tags) != 2 {
		t.Fatalf("first run derived %d images, want 2:\n%s", len(tags), out)
	}
	if strings.Contains(out, token) {
		t.Errorf("the run's output shows the index token:\n%s", out)
	}
	s := c.show("latest")
	for _, tk := range s.Tasks {
		if tk.Name == "use-pkg" && tk.Outputs.Parameters["Output"] != float64(45) {
			t.Errorf("use-pkg Output = %v, want 45", tk.Outputs.Parameters["Output"])
		}
	}
	for _, m := range tags {
		b, err := exec.Command("docker", "image", "inspect", m[1]).CombinedOutput()
		h, err2 := exec.Command("docker", "history", "--no-trunc", m[1]).CombinedOutput()
		if err != nil || err2 != nil {
			t.Fatalf("inspect %s: %v %v\n%s", m[1], err, err2, b)
		}
		if strings.Contains(string(b)+string(h), token) || strings.Contains(string(b)+string(h), "PIP_EXTRA_INDEX_URL") {
			t.Errorf("image %s holds the pip settings:\n%s\n%s", m[1], b, h)
		}
	}

	second := c.mustRun("run", "cmd/mlpipe/testdata/pyfunc.yaml", "--no-cache")
	if strings.Contains(second.stdout+second.stderr, "deriving") {
		t.Errorf("the second run derived an image again:\n%s%s", second.stdout, second.stderr)
	}
	build := c.mustRun("build", "cmd/mlpipe/testdata/pyfunc.yaml").stdout
	for _, m := range tags {
		if !strings.Contains(build, m[1]+" up to date") {
			t.Errorf("mlpipe build does not say %s is up to date:\n%s", m[1], build)
		}
	}
	plan := c.mustRun("plan", "cmd/mlpipe/testdata/pyfunc.yaml").stdout
	if !strings.Contains(plan, "python: kfp==2.7.0 mlpipe-testpkg (+1 conditional); installed in mlpipe/pyfunc:") {
		t.Errorf("plan:\n%s", plan)
	}
}
