package main

// What a mlpipe killed with SIGKILL leaves behind: no step process, and
// no task shown RUNNING for ever.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mlpipe/mlpipe/internal/procfs"
)

// hostileComponent runs a step whose leader and background jobs ignore
// SIGTERM, with a grandchild in a shell of its own; it writes their PIDs
// to the file given as its input, the last line "ready".
const hostileComponent = `
name: hostile
inputs: [{name: pids, type: String}]
implementation:
  container:
    image: busybox
    command:
    - sh
    - -c
    - |
      f=$0
      trap "" TERM
      sleep 300 & echo $! > $f
      (trap "" TERM; sleep 300) & echo $! >> $f
      sh -c 'trap "" TERM; sleep 300 & echo $! >> '$f'; wait' & echo $! >> $f
      echo $$ >> $f
      while [ $(wc -l < $f) -lt 5 ]; do sleep 0.01; done
      echo ready >> $f
      wait
    args: [{inputValue: pids}]
`

// waitPIDs waits for a PID file ending with "ready" and returns its PIDs.
func waitPIDs(t *testing.T, cmd *exec.Cmd, path string) []int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if f := strings.Fields(string(b)); len(f) > 0 && f[len(f)-1] == "ready" {
			var pids []int
			for _, s := range f[:len(f)-1] {
				pid, err := strconv.Atoi(s)
				if err != nil {
					t.Fatalf("pid file %q", b)
				}
				pids = append(pids, pid)
			}
			return pids
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal("the step never wrote its PIDs")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSecurityKilledMlpipeLeavesNoStepProcess: kill -9 of mlpipe while a
// process step runs ends every process of the step within two seconds,
// before any other mlpipe command runs: the leader, its background jobs,
// those that ignore SIGTERM and a grandchild (they would keep the GPU
// lease files they inherited).
func TestSecurityKilledMlpipeLeavesNoStepProcess(t *testing.T) {
	c := newCLI(t)
	pidFile := filepath.Join(t.TempDir(), "pids")
	dir := writeFiles(t, map[string]string{
		"hostile.yaml":  hostileComponent,
		"pipeline.yaml": "name: hostile\ntasks:\n  hostile: {component: hostile.yaml, inputs: {pids: " + strconv.Quote(pidFile) + "}}\n",
	})
	cmd := exec.Command(mlpipeBin, "run", dir, "--run-id", "killed-"+strconv.Itoa(os.Getpid()), "--output", "json")
	cmd.Env, cmd.Dir = c.env, c.dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pids := waitPIDs(t, cmd, pidFile)
	if len(pids) != 5 {
		t.Fatalf("pids %v", pids)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if alive := procfs.WaitGone(pids, 2*time.Second); len(alive) > 0 {
		for _, pid := range alive {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		t.Fatalf("step processes %v (of %v) outlived the killed mlpipe by 2 s", alive, pids)
	}
}

// TestSecurityKilledRunTasksBecomeCanceled: the tasks a killed mlpipe left
// RUNNING in the history are CANCELED once the next command starts (the
// run itself shows INTERRUPTED until resumed); the attempt is closed; the
// resume runs the task again.
func TestSecurityKilledRunTasksBecomeCanceled(t *testing.T) {
	c := newCLI(t)
	counts := t.TempDir()
	c.env = append(c.env, "COUNT_DIR="+counts, "MLPIPE_PROCESS_PASS_ENV=COUNT_DIR")
	dir := writeFiles(t, map[string]string{
		// Only the first attempt sleeps: the resume does not wait.
		"nap.yaml": `
name: nap
inputs: [{name: seconds, type: Float}, {name: tag, type: String}]
implementation:
  container:
    image: busybox
    command: [sh, -c, 'echo $$ > "$COUNT_DIR/$1.pid"; if [ "$MLPIPE_ATTEMPT" = 1 ]; then sleep "$0"; fi']
    args: [{inputValue: seconds}, {inputValue: tag}]
`,
		"pipeline.yaml": `
name: killed
tasks:
  first: {component: nap.yaml, inputs: {seconds: 0, tag: first}}
  second: {component: nap.yaml, inputs: {seconds: 30, tag: second}, after: [first]}
`})
	runID := "killed-history-" + strconv.Itoa(os.Getpid())
	cmd := exec.Command(mlpipeBin, "run", dir, "--run-id", runID, "--output", "json")
	cmd.Env, cmd.Dir = c.env, c.dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForFile(t, cmd, filepath.Join(counts, "second.pid"), "the second task never started")
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	s := c.show(runID)
	states := map[string]string{}
	for _, tk := range s.Tasks {
		states[tk.Name] = tk.State
	}
	if states["first"] != "SUCCEEDED" || states["second"] != "CANCELED" {
		t.Errorf("task states after the kill: %v, want first SUCCEEDED, second CANCELED", states)
	}
	if ls := c.mustRun("runs", "ls"); !strings.Contains(ls.stdout, "INTERRUPTED") {
		t.Errorf("runs ls does not show the killed run as interrupted:\n%s", ls.stdout)
	}
	h, err := openTestHistory(c)
	if err != nil {
		t.Fatal(err)
	}
	atts, err := h.Attempts(t.Context(), runID, "second")
	h.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(atts) != 1 || atts[0].FinishedAt.IsZero() || atts[0].LogPath == "" {
		t.Errorf("attempts of second: %+v, want one, finished, with its log", atts)
	}
	if r := c.run("run", "--resume", runID, "--output", "json"); r.code != 0 {
		t.Fatalf("resume: exit %d\n%s", r.code, r.stderr)
	}
	if s := c.show(runID); s.State != "SUCCEEDED" {
		t.Errorf("after resume: %s", s.State)
	}
}
