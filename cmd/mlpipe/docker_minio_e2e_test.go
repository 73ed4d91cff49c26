//go:build docker

package main

import (
	"strings"
	"testing"
)

// TestDockerWithMinIO: with the Docker executor and a MinIO pipeline root,
// steps read and write their artifacts at KFP's local paths
// (/minio/<bucket>/<key>), staged in and uploaded by mlpipe.
func TestDockerWithMinIO(t *testing.T) {
	c, _ := dockerCLI(t)
	srv := startMinIOFor(t, c)
	_ = srv
	r, last := c.runJSON("pipelines/quickstart", "--pipeline-root", "minio://mlpipeline/v2/artifacts", "-p", "repeat=2")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	s := c.show(last["run_id"].(string))
	for _, tk := range s.Tasks {
		if tk.State != "SUCCEEDED" {
			t.Errorf("%s: %s", tk.Name, tk.State)
		}
		for _, arts := range tk.Outputs.Artifacts {
			for _, a := range arts {
				if !strings.HasPrefix(a.URI, "minio://mlpipeline/v2/artifacts/quickstart/") || a.Digest == "" {
					t.Errorf("artifact %+v", a)
				}
			}
		}
	}
	logs := c.mustRun("logs", last["run_id"].(string), "count").stdout
	if !strings.Contains(logs, "2 lines") {
		t.Errorf("count read the staged artifact wrongly: %q", logs)
	}
}
