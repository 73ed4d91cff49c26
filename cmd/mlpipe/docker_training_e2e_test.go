//go:build docker

package main

import (
	"os"
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
	check := func(runID string) (registered string) {
		t.Helper()
		s := c.show(runID)
		for _, tk := range s.Tasks {
			if tk.State != "SUCCEEDED" {
				t.Errorf("%s: %s", tk.Name, tk.State)
			}
			if tk.Name == "publish" {
				// Published from inside the container into the artifact
				// store, outside the run: <pipeline root>/registry/...
				if a := tk.Outputs.Artifacts["registered_model"]; len(a) == 1 && strings.Contains(a[0].URI, "/registry/classifier/v") && a[0].Digest != "" {
					registered = a[0].URI
				} else {
					t.Errorf("publish registered %+v", a)
				}
			}
		}
		logs := c.mustRun("logs", runID, "train[0]").stdout
		if !strings.Contains(logs, "trained with numpy") {
			t.Errorf("the trainer did not use the image's numpy:\n%s", logs)
		}
		return registered
	}
	if reg := check(last["run_id"].(string)); reg != "" {
		b, err := os.ReadFile(filepath.Join(reg, "metadata.json"))
		if err != nil || !strings.Contains(string(b), `"digest": "sha256:`) {
			t.Errorf("the registry version in the local store: %v\n%s", err, b)
		}
	}
	startMinIOFor(t, c)
	r2, last2 := c.runJSON(append(args, "--pipeline-root", "minio://mlpipeline/v2/artifacts")...)
	if r2.code != 0 {
		t.Fatalf("with MinIO: exit %d\n%s", r2.code, r2.stderr)
	}
	if reg := check(last2["run_id"].(string)); reg != "" && !strings.HasPrefix(reg, "minio://mlpipeline/v2/artifacts/registry/classifier/v") {
		t.Errorf("with MinIO the model was registered at %s", reg)
	}
}
