//go:build docker

package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrainingInDocker runs pipelines/training with the Docker executor,
// each component in its image built from its Dockerfile on the locally
// made Python base image (no registry needed), with the local store and
// with MinIO.
func TestTrainingInDocker(t *testing.T) {
	c, _ := dockerCLI(t)
	out, err := exec.Command(filepath.Join(c.dir, "scripts", "base-images.sh"), "python").CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/base-images.sh python: %v\n%s", err, out)
	}
	if r := c.run("build", "--build-arg", "BASE_IMAGE=mlpipe/python:3"); r.code != 0 {
		t.Fatalf("mlpipe build: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	args := []string{"pipelines/training", "-p", "rows=400", "-p", "epochs=5", "-p", "threshold=0.5"}
	r, last := c.runJSON(args...)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	check := func(runID string) {
		t.Helper()
		s := c.show(runID)
		for _, tk := range s.Tasks {
			if tk.State != "SUCCEEDED" {
				t.Errorf("%s: %s", tk.Name, tk.State)
			}
		}
		logs := c.mustRun("logs", runID, "train[0]").stdout
		if !strings.Contains(logs, "trained with numpy") {
			t.Errorf("the trainer did not use the image's numpy:\n%s", logs)
		}
	}
	check(last["run_id"].(string))
	startMinIOFor(t, c)
	r2, last2 := c.runJSON(append(args, "--pipeline-root", "minio://mlpipeline/v2/artifacts")...)
	if r2.code != 0 {
		t.Fatalf("with MinIO: exit %d\n%s", r2.code, r2.stderr)
	}
	check(last2["run_id"].(string))
}
