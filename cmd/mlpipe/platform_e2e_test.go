package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// k8sSources writes the local secret and config map stores the platform
// test pipeline reads, under the CLI's XDG_CONFIG_HOME.
func k8sSources(t *testing.T, c *cli) {
	t.Helper()
	var cfg string
	for _, kv := range c.env {
		if v, ok := strings.CutPrefix(kv, "XDG_CONFIG_HOME="); ok {
			cfg = v
		}
	}
	secret := filepath.Join(cfg, "mlpipe", "secrets", "db-creds")
	maps := filepath.Join(cfg, "mlpipe", "configmaps")
	for _, d := range []string{secret, maps} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for name, v := range map[string]string{"username": "alice", "password": "s3cret-value"} {
		if err := os.WriteFile(filepath.Join(secret, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(maps, "settings.env"), []byte("# settings\nregion=eu-west\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestKubernetesPlatformProcess: with the process executor, secrets,
// config maps and field paths reach the step's environment; what would be
// mounted is a warning naming the path (a host process has no mounts).
func TestKubernetesPlatformProcess(t *testing.T) {
	c := newCLI(t)
	k8sSources(t, c)
	b, err := os.ReadFile(filepath.Join(c.dir, "cmd/mlpipe/testdata/k8s_platform.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	i := strings.Index(src, "    exec-produce:\n      container:")
	j := strings.Index(src, "pipelineInfo:")
	src = src[:i] + `    exec-produce:
      container:
        image: busybox:1.36
        command: [sh, -c, 'echo "user=$DB_USER ns=$POD_NAMESPACE region=$REGION"']
    exec-consume:
      container:
        image: busybox:1.36
        command: ["true"]
` + src[j:]
	ir := filepath.Join(t.TempDir(), "k8s.yaml")
	if err := os.WriteFile(ir, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r := c.mustRun("run", ir, "--executor", "process")
	out := r.stdout + r.stderr
	for _, want := range []string{
		"produce | user=alice ns=local region=eu-west",
		"warning: task produce: " + filepath.Join(filepath.Dir(c.state), "config", "mlpipe", "secrets", "db-creds") + " would be mounted at /etc/db; the process executor runs steps on the host and mounts nothing",
		"warning: task produce: PVC ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not say %q:\n%s", want, out)
		}
	}
}
