package process

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mlpipe/mlpipe/internal/procfs"
	"github.com/mlpipe/mlpipe/runner"
	"github.com/mlpipe/mlpipe/runner/executortest"
)

func task(t *testing.T, argv ...string) (*runner.ExecTask, *bytes.Buffer) {
	var out bytes.Buffer
	return &runner.ExecTask{Command: argv[:1], Args: argv[1:], Dir: t.TempDir(), Stdout: &out, Stderr: &out, Name: "t"}, &out
}

func TestRunCapturesOutputExitCodeEnvAndDir(t *testing.T) {
	tk, out := task(t, "sh", "-c", `echo "hi $GREETING from $(pwd)"; exit 3`)
	tk.Env = []string{"GREETING=there"}
	res, err := New(time.Second).Run(t.Context(), tk)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 3 {
		t.Errorf("exit code = %d", res.ExitCode)
	}
	if want := "hi there from " + tk.Dir + "\n"; out.String() != want {
		t.Errorf("output = %q, want %q", out.String(), want)
	}
}

func TestGPUEnvironment(t *testing.T) {
	tk, out := task(t, "sh", "-c", `echo "$CUDA_VISIBLE_DEVICES|$CUDA_DEVICE_ORDER|$NVIDIA_VISIBLE_DEVICES"`)
	tk.GPUs = []string{"GPU-a", "GPU-b"}
	if _, err := New(time.Second).Run(t.Context(), tk); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != "GPU-a,GPU-b|PCI_BUS_ID|GPU-a,GPU-b" {
		t.Errorf("env = %q", got)
	}
}

func TestCommandNotFound(t *testing.T) {
	tk, _ := task(t, "no-such-command-mlpipe")
	_, err := New(time.Second).Run(t.Context(), tk)
	if err == nil || !strings.Contains(err.Error(), `"no-such-command-mlpipe" not found`) {
		t.Errorf("err = %v", err)
	}
}

// TestCancelKillsProcessGroup starts a shell with a background child that
// ignores SIGTERM; cancelling must end both, the child after the grace
// period.
func TestCancelKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	tk, _ := task(t, "sh", "-c", `(trap "" TERM; sleep 60) & echo $! > `+pidFile+`; wait`)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan *runner.ExecResult)
	go func() {
		res, err := New(300*time.Millisecond).Run(ctx, tk)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	var childPID int
	deadline := time.Now().Add(5 * time.Second)
	for childPID == 0 && time.Now().Before(deadline) {
		if b, err := os.ReadFile(pidFile); err == nil {
			childPID, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if childPID == 0 {
		t.Fatal("child never started")
	}
	start := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("cancel took %s", d)
	}
	// The child that ignored SIGTERM is gone too (a zombie is dead: this
	// machine's PID 1 may be slow to reap what was reparented to it).
	if alive := procfs.WaitGone([]int{childPID}, 2*time.Second); len(alive) > 0 {
		t.Errorf("child %d survived the cancel", childPID)
	}
}

// TestStdinIsEmpty: a step that reads its standard input gets end of file
// at once (as in a pod), however many steps share the one /dev/null.
func TestStdinIsEmpty(t *testing.T) {
	for i := range 3 {
		tk, out := task(t, "sh", "-c", `n=$(wc -c); echo "read $n"; readlink /proc/self/fd/0`)
		res, err := New(time.Second).Run(t.Context(), tk)
		if err != nil {
			t.Fatal(err)
		}
		if res.ExitCode != 0 || !strings.HasPrefix(out.String(), "read 0\n/dev/null") {
			t.Errorf("step %d: exit %d, output %q", i, res.ExitCode, out.String())
		}
	}
}

// TestSecurityStepEnvironmentHasNoCredentials: a step printing env sees
// none of mlpipe's credentials or the user's other variables, only the
// allow-list, its own env and what pass_env adds.
func TestSecurityStepEnvironmentHasNoCredentials(t *testing.T) {
	for k, v := range map[string]string{
		"AWS_SECRET_ACCESS_KEY": "aws-secret", "AWS_ACCESS_KEY_ID": "aws-id", "MLPIPE_MINIO_SECRET_KEY": "minio-secret",
		"MLPIPE_MINIO_ACCESS_KEY": "minio-id", "MLPIPE_KFP_COOKIE": "cookie-secret", "GITHUB_TOKEN": "gh-secret",
		"CUDA_VISIBLE_DEVICES": "GPU-all", "LC_ALL": "C.UTF-8", "http_proxy": "http://proxy:3128", "MY_VAR": "mine",
	} {
		t.Setenv(k, v)
	}
	tk, out := task(t, "env")
	tk.Env = []string{"FROM_COMPONENT=yes"}
	ex := New(time.Second)
	ex.PassEnv = []string{"MY_*", "MLPIPE_MINIO_SECRET_KEY"}
	if _, err := ex.Run(t.Context(), tk); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	for _, secret := range []string{"aws-secret", "aws-id", "minio-secret", "minio-id", "cookie-secret", "gh-secret", "GPU-all"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("the step saw %q:\n%s", secret, out.String())
		}
	}
	for k, want := range map[string]string{"LC_ALL": "C.UTF-8", "http_proxy": "http://proxy:3128", "MY_VAR": "mine",
		"FROM_COMPONENT": "yes", "PATH": os.Getenv("PATH"), "CUDA_VISIBLE_DEVICES": "", "NVIDIA_VISIBLE_DEVICES": "void"} {
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s = %q (set %v), want %q", k, v, ok, want)
		}
	}
}

func TestConformance(t *testing.T) {
	executortest.Run(t, New(time.Second), "")
}
