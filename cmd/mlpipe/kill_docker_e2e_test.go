//go:build docker

package main

// What a killed or force-quit mlpipe leaves of its Docker steps.

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
)

// waitContainers waits until n containers of the run are in state.
func waitContainers(t *testing.T, dc *client.Client, cmd *exec.Cmd, runID, state string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := 0
		for _, ct := range runContainers(t, dc, runID) {
			if ct.State == state {
				got++
			}
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			if cmd != nil && cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
			}
			t.Fatalf("%d container(s) of run %s %s, want %d", got, runID, state, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// taskStates returns the run's task states by name.
func taskStates(c *cli, runID string) map[string]string {
	states := map[string]string{}
	for _, tk := range c.show(runID).Tasks {
		states[tk.Name] = tk.State
	}
	return states
}

// TestSecurityDockerResumeCollectsFinishedContainer: mlpipe is killed
// with SIGKILL while a container step runs; the container finishes (exit
// 0) without it; the next command shows the task CANCELED, not RUNNING;
// `run --resume` collects the container's outputs and whole log instead
// of running the step again, and removes it.
func TestSecurityDockerResumeCollectsFinishedContainer(t *testing.T) {
	c, dc := dockerCLI(t)
	dir := writeFiles(t, map[string]string{
		"pipeline.yaml": "name: docker-collect\ntasks:\n  once: {component: once.yaml, inputs: {seconds: 3}}\n",
		"once.yaml": `
name: once
inputs: [{name: seconds, type: Float}]
outputs: [{name: n, type: Integer}]
implementation:
  container:
    image: busybox:1.36
    command:
    - sh
    - -c
    - |
      echo run >> "$(dirname "$1")/count"
      echo started
      sleep "$0"
      echo finished without mlpipe
      echo 42 > "$1"
    args: [{inputValue: seconds}, {outputPath: n}]
`,
	})
	runID := fmt.Sprintf("docker-collect-%d", time.Now().UnixNano())
	cmd := exec.Command(mlpipeBin, "run", dir, "--run-id", runID)
	cmd.Env, cmd.Dir = c.env, c.dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitContainers(t, dc, cmd, runID, "running", 1)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitContainers(t, dc, nil, runID, "exited", 1)

	if st := taskStates(c, runID); st["once"] != "CANCELED" {
		t.Errorf("after the kill, the next command shows %v, want once CANCELED", st)
	}
	r := c.run("run", "--resume", runID)
	if r.code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var counts []string
	filepath.WalkDir(filepath.Join(c.state, "runs", runID), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "count" {
			counts = append(counts, p)
		}
		return nil
	})
	if len(counts) != 1 {
		t.Fatalf("count files %v", counts)
	}
	if b, _ := os.ReadFile(counts[0]); strings.Count(string(b), "run") != 1 {
		t.Errorf("the step ran %d times, want once (collected on resume)", strings.Count(string(b), "run"))
	}
	s := c.show(runID)
	if s.State != "SUCCEEDED" || len(s.Tasks) != 1 || s.Tasks[0].Attempts != 1 || s.Tasks[0].Outputs.Parameters["n"] != float64(42) {
		t.Errorf("after resume: %s, tasks %+v", s.State, s.Tasks)
	}
	if logs := c.mustRun("logs", runID, "once").stdout; !strings.Contains(logs, "finished without mlpipe") {
		t.Errorf("the log misses what the step printed after mlpipe died: %q", logs)
	}
	if left := runContainers(t, dc, runID); len(left) != 0 {
		t.Errorf("%d container(s) left after the resume", len(left))
	}
}

// TestSecurityDockerForcedCtrlCLeavesNoContainers: a second Ctrl-C while
// the first waits for containers that ignore SIGTERM exits at once and
// leaves no container, running or stopped; the history shows the tasks
// CANCELED from the next command on.
func TestSecurityDockerForcedCtrlCLeavesNoContainers(t *testing.T) {
	c, dc := dockerCLI(t)
	dir := writeFiles(t, map[string]string{
		"pipeline.yaml": "name: docker-force\ntasks:\n  a: {component: stubborn.yaml}\n  b: {component: stubborn.yaml}\n",
		"stubborn.yaml": "name: stubborn\nimplementation:\n  container:\n    image: busybox:1.36\n    command: [sh, -c, 'trap \"\" TERM; sleep 300 & wait']\n",
	})
	runID := fmt.Sprintf("docker-force-%d", time.Now().UnixNano())
	cmd := exec.Command(mlpipeBin, "run", dir, "--run-id", runID)
	cmd.Env, cmd.Dir = c.env, c.dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitContainers(t, dc, cmd, runID, "running", 2)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v, want code 130", err)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("the forced exit took %v", d)
	}
	if left := runContainers(t, dc, runID); len(left) != 0 {
		for _, ct := range left {
			t.Errorf("container %s left after a forced exit: %s", ct.ID[:12], ct.State)
			_ = dc.ContainerRemove(context.Background(), ct.ID, container.RemoveOptions{Force: true})
		}
	}
	if st := taskStates(c, runID); st["a"] != "CANCELED" || st["b"] != "CANCELED" {
		t.Errorf("task states after a forced exit: %v, want CANCELED", st)
	}
}
