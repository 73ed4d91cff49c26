//go:build docker

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKubernetesPlatformInDocker runs an IR with the kfp-kubernetes
// platform spec (testdata/k8s_platform.yaml) in containers: secrets as env
// and files, a config map, a PVC that createpvc makes, two tasks share and
// deletepvc removes, field paths, pod labels, an empty dir and /dev/shm;
// the scheduling settings are warnings at the start; a deadline stops a
// step; a missing secret fails its task before it starts.
func TestKubernetesPlatformInDocker(t *testing.T) {
	c, _ := dockerCLI(t)
	k8sSources(t, c)
	r := c.mustRun("run", "cmd/mlpipe/testdata/k8s_platform.yaml")
	out := r.stdout + r.stderr
	for _, want := range []string{
		`warning: task "produce" (exec-produce): nodeSelector {accelerator: nvidia-tesla-a100}: not applicable on one machine`,
		`warning: task "consume" (exec-consume): tolerations [gpu Exists NoSchedule]: not applicable on one machine`,
		"produce | note: secretAsEnv: DB_USER from secret db-creds",
		"produce | user=alice pod=produce-",
		"ns=local team=vision region=eu-west",
		"produce | s3cret-value",
		"produce | password username",
		"produce | shm=262144",
		"produce | scratch=ok",
		"produce | fast=65536",
		"produce | tmpfs",
		"consume | read hello",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not say %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "s3cret-value") != 1 {
		t.Errorf("the secret's value appears in mlpipe's own output, not only in the step's:\n%s", out)
	}
	if left, _ := filepath.Glob(filepath.Join(c.state, "pvcs", "*")); len(left) != 0 {
		t.Errorf("deletepvc left %v", left)
	}

	// A deadline stops the step; the attempt fails with the reason.
	b, err := os.ReadFile(filepath.Join(c.dir, "cmd/mlpipe/testdata/k8s_platform.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	slow := strings.NewReplacer(`echo "read $(cat /data/greeting)"`, `sleep 60`, "activeDeadlineSeconds: '60'", "activeDeadlineSeconds: '1'").Replace(string(b))
	ir := filepath.Join(t.TempDir(), "slow.yaml")
	if err := os.WriteFile(ir, []byte(slow), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := c.run("run", ir); r.code == 0 {
		t.Fatalf("a step past its deadline succeeded:\n%s", r.stdout)
	}
	for _, tk := range c.show("latest").Tasks {
		if tk.Name == "consume" && (tk.State != "FAILED" || !strings.Contains(tk.Reason, "activeDeadlineSeconds (1s)")) {
			t.Errorf("consume: %s %q", tk.State, tk.Reason)
		}
	}

	// Without the secret, the task fails before it starts.
	if err := os.RemoveAll(filepath.Join(filepath.Dir(c.state), "config", "mlpipe", "secrets")); err != nil {
		t.Fatal(err)
	}
	if r := c.run("run", "cmd/mlpipe/testdata/k8s_platform.yaml"); r.code == 0 {
		t.Fatal("the run succeeded without its secret")
	}
	for _, tk := range c.show("latest").Tasks {
		if tk.Name == "produce" {
			if tk.State != "FAILED" || tk.Attempts != 0 || !strings.Contains(tk.Reason, "db-creds") {
				t.Errorf("produce: %s after %d attempts: %q", tk.State, tk.Attempts, tk.Reason)
			}
		}
	}
}
