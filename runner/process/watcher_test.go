package process

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mlpipe/mlpipe/internal/procfs"
	"github.com/mlpipe/mlpipe/runner"
)

// TestMain makes the test binary what mlpipe is: a program that can be
// started as the step watcher, and, with MLPIPE_TEST_STEP, a stand-in for
// mlpipe running one step (killed by the tests).
func TestMain(m *testing.M) {
	ServeWatcher()
	if script := os.Getenv("MLPIPE_TEST_STEP"); script != "" {
		tk := &runner.ExecTask{RunID: os.Getenv("MLPIPE_TEST_RUN"), Command: []string{"sh", "-c", script}, Dir: os.TempDir(), Stdout: os.Stdout, Stderr: os.Stderr}
		tk.Env = []string{"MLPIPE_RUN_ID=" + tk.RunID}
		res, err := New(time.Second).Run(context.Background(), tk)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(res.ExitCode)
	}
	os.Exit(m.Run())
}

// readPIDs waits for a file of PIDs, one a line, ending with "ready".
func readPIDs(t *testing.T, path string) []int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(path)
		if lines := strings.Fields(string(b)); len(lines) > 0 && lines[len(lines)-1] == "ready" {
			var pids []int
			for _, l := range lines[:len(lines)-1] {
				pid, err := strconv.Atoi(l)
				if err != nil {
					t.Fatalf("pid file: %q", b)
				}
				pids = append(pids, pid)
			}
			return pids
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the step never wrote its PIDs")
	return nil
}

// hostileStep is a step whose leader and background jobs ignore SIGTERM;
// it writes their PIDs to the file f (the last line "ready").
const hostileStep = `f=$0; trap "" TERM; sleep 300 & echo $! > $f; (trap "" TERM; sleep 300) & echo $! >> $f; sh -c 'trap "" TERM; sleep 300 & echo $! >> '$f'; wait' & echo $! >> $f; echo $$ >> $f; while [ $(wc -l < $f) -lt 5 ]; do sleep 0.01; done; echo ready >> $f; wait`

// TestSecurityStepGroupDiesWithMlpipe: when the process running a step
// (mlpipe, here the test binary standing in for it) is killed with
// SIGKILL, no process of the step lives on: not the leader, not its
// background jobs, not the ones that ignore SIGTERM, not a grandchild.
func TestSecurityStepGroupDiesWithMlpipe(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pids")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), "MLPIPE_TEST_STEP="+strings.Replace(hostileStep, "f=$0", "f="+pidFile, 1), "MLPIPE_TEST_RUN=watcher-test-"+strconv.Itoa(os.Getpid()))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pids := readPIDs(t, pidFile)
	if len(pids) < 4 {
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
		t.Fatalf("processes of the step outlived the killed mlpipe by 2 s: %v (of %v)", alive, pids)
	}
}

// TestSecurityWatcherKillsUnconfirmedStart: a step that mlpipe was
// starting when it died (its slot not yet holding a group) is found by its
// run id.
func TestSecurityWatcherKillsUnconfirmedStart(t *testing.T) {
	table, err := os.CreateTemp(t.TempDir(), "table")
	if err != nil {
		t.Fatal(err)
	}
	defer table.Close()
	run := "watcher-pending-" + strconv.Itoa(os.Getpid())
	slot := make([]byte, slotSize)
	binary.NativeEndian.PutUint32(slot[0:], slotStart)
	binary.NativeEndian.PutUint32(slot[8:], uint32(len(run)))
	copy(slot[12:], run)
	if _, err := table.WriteAt(slot, 5*slotSize); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "sleep 300 & echo $!; wait")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "MLPIPE_RUN_ID=" + run}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var child int
	if _, err := fmt.Fscan(out, &child); err != nil {
		t.Fatal(err)
	}
	killTable(table) // mlpipe died
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatal("the step's leader outlived its mlpipe")
	}
	deadline := time.Now().Add(2 * time.Second)
	for procfs.Alive(child) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(child, syscall.SIGKILL)
			t.Fatal("the step's child outlived its mlpipe")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWatcherKeepsExitStatus: exit codes and signals come through as
// before, and the group is unregistered once the step ends.
func TestWatcherKeepsExitStatus(t *testing.T) {
	for _, c := range []struct {
		script string
		code   int
		signal string
	}{
		{"exit 0", 0, ""},
		{"exit 42", 42, ""},
		{"kill -TERM $$", 128 + 15, "terminated"},
		{"kill -SEGV $$", 128 + 11, "segmentation fault"},
	} {
		tk, _ := task(t, "sh", "-c", c.script)
		res, err := New(time.Second).Run(t.Context(), tk)
		if err != nil {
			t.Fatal(err)
		}
		if res.ExitCode != c.code || res.Signal != c.signal {
			t.Errorf("%s: exit %d signal %q, want %d %q", c.script, res.ExitCode, res.Signal, c.code, c.signal)
		}
	}
}

// TestWatcherReplacedWhenKilled: a watcher killed by someone is replaced
// at the next step.
func TestWatcherReplacedWhenKilled(t *testing.T) {
	run := func() {
		tk, _ := task(t, "true")
		if _, err := New(time.Second).Run(t.Context(), tk); err != nil {
			t.Fatal(err)
		}
	}
	run()
	steps.mu.Lock()
	first := steps.watcher
	steps.mu.Unlock()
	if first == 0 {
		t.Fatal("no watcher")
	}
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	run()
	steps.mu.Lock()
	second, pipe := steps.watcher, steps.pipe
	steps.mu.Unlock()
	if second == first || pipe == nil || !procfs.Alive(second) {
		t.Errorf("watcher %d killed, now %d (alive %v)", first, second, procfs.Alive(second))
	}
}
