package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrainingPublishesToTheRegistry runs pipelines/training with the
// process executor and the local store: each run publishes a version under
// <pipeline root>/registry/classifier, which mlpipe artifacts lists and
// downloads; a registry outside the pipeline root is refused.
func TestTrainingPublishesToTheRegistry(t *testing.T) {
	c := newCLI(t)
	args := []string{"pipelines/training", "-p", "rows=300", "-p", "epochs=5", "-p", "threshold=0.5", "--no-cache"}
	var versions []string
	for range 2 {
		r, last := c.runJSON(args...)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		for _, tk := range c.show(last["run_id"].(string)).Tasks {
			if tk.Name == "publish" {
				if v, _ := tk.Outputs.Parameters["version"].(string); v == "v"+last["run_id"].(string) {
					versions = append(versions, v)
				} else {
					t.Errorf("published version %v, want v<run id>", tk.Outputs.Parameters["version"])
				}
			}
		}
	}
	registry := filepath.Join(c.state, "artifacts", "registry", "classifier")
	ls := c.mustRun("artifacts", "ls", "registry/classifier").stdout // relative: under the pipeline root
	for _, v := range versions {
		for _, f := range []string{"model.json", "metadata.json"} {
			if !strings.Contains(ls, filepath.Join(registry, v, f)) {
				t.Errorf("artifacts ls does not list %s/%s:\n%s", v, f, ls)
			}
		}
	}
	if n := strings.Count(ls, "\n"); n != 4 {
		t.Errorf("artifacts ls: %d lines, want 4:\n%s", n, ls)
	}

	dest := filepath.Join(t.TempDir(), "model")
	c.mustRun("artifacts", "get", filepath.Join(registry, versions[0]), dest)
	model, err := os.ReadFile(filepath.Join(dest, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	var md struct {
		Digest  string `json:"digest"`
		Version string `json:"version"`
	}
	b, err := os.ReadFile(filepath.Join(dest, "metadata.json"))
	if err != nil || json.Unmarshal(b, &md) != nil {
		t.Fatalf("metadata.json: %v\n%s", err, b)
	}
	sum := sha256.Sum256(model)
	if md.Digest != "sha256:"+hex.EncodeToString(sum[:]) || md.Version != versions[0] {
		t.Errorf("metadata %+v, model sha256 %x", md, sum)
	}

	// The registry must lie inside the pipeline root.
	r := c.run(append([]string{"run"}, append(args, "-p", "registry="+t.TempDir())...)...)
	if r.code != 3 || !strings.Contains(r.stderr, "outside the pipeline root") {
		t.Errorf("registry outside the pipeline root: exit %d\n%s", r.code, r.stderr)
	}
	if r := c.run("artifacts", "get", filepath.Join(registry, "v0"), dest); r.code != 2 || !strings.Contains(r.stderr, "no artifact at") {
		t.Errorf("get of a missing version: exit %d\n%s", r.code, r.stderr)
	}
}
