// Package executortest is the conformance suite every executor passes
// (the twin of storage/storagetest): argv with Kubernetes command
// semantics, environment, exit codes, stdout and stderr capture, outputs
// written into a mounted task directory, and cancellation.
package executortest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlpipe/mlpipe/contract"
)

// Run runs the suite against ex. image is an image with a POSIX shell in
// /bin/sh (isolated executors run the steps in it; others ignore it).
func Run(t *testing.T, ex contract.Executor, image string) {
	tests := []struct {
		name string
		fn   func(t *testing.T, ex contract.Executor, image string)
	}{
		{"ArgvAndExitCode", testArgvAndExitCode},
		{"Environment", testEnvironment},
		{"StdoutAndStderr", testStdoutAndStderr},
		{"OutputsInTaskDir", testOutputsInTaskDir},
		{"Cancel", testCancel},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, ex, image) })
	}
}

type capture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *capture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// task is an attempt of a unique run, with its output captured, in a task
// directory mounted at the same path.
func task(t *testing.T, ex contract.Executor, image string, command, args []string) (*contract.ExecTask, *capture, *capture) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o777); err != nil { // the container's user may differ
		t.Fatal(err)
	}
	var stdout, stderr capture
	et := &contract.ExecTask{RunID: fmt.Sprintf("conformance-%d-%d", os.Getpid(), time.Now().UnixNano()), Pipeline: "conformance",
		TaskPath: "step", Name: "step", Attempt: 1, Image: image, Command: command, Args: args, Dir: dir,
		Mounts: []contract.Mount{{HostPath: dir, ContainerPath: dir}}, Stdout: &stdout, Stderr: &stderr}
	return et, &stdout, &stderr
}

func testArgvAndExitCode(t *testing.T, ex contract.Executor, image string) {
	et, stdout, _ := task(t, ex, image, []string{"sh", "-c", `echo "$0|$1|$2"; exit 3`}, []string{"zero", "one two", "three"})
	res, err := ex.Run(t.Context(), et)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 3 {
		t.Errorf("exit code %d, want 3", res.ExitCode)
	}
	if got := strings.TrimSpace(stdout.String()); got != "zero|one two|three" {
		t.Errorf("argv seen as %q, want each argument whole", got)
	}
}

func testEnvironment(t *testing.T, ex contract.Executor, image string) {
	et, stdout, _ := task(t, ex, image, []string{"sh", "-c", `echo "$GREETING/$MLPIPE_CONFORMANCE"`}, nil)
	et.Env = []string{"GREETING=hello world", "MLPIPE_CONFORMANCE=1"}
	if _, err := ex.Run(t.Context(), et); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(stdout.String()); got != "hello world/1" {
		t.Errorf("environment seen as %q", got)
	}
}

func testStdoutAndStderr(t *testing.T, ex contract.Executor, image string) {
	et, stdout, stderr := task(t, ex, image, []string{"sh", "-c", `echo out; echo err >&2; printf 'no newline'`}, nil)
	if _, err := ex.Run(t.Context(), et); err != nil {
		t.Fatal(err)
	}
	out, errs := stdout.String(), stderr.String()
	all := out + errs // an executor may merge the streams into one writer
	for _, want := range []string{"out\n", "err\n", "no newline"} {
		if !strings.Contains(all, want) {
			t.Errorf("output lacks %q: stdout %q, stderr %q", want, out, errs)
		}
	}
}

func testOutputsInTaskDir(t *testing.T, ex contract.Executor, image string) {
	et, _, stderr := task(t, ex, image, nil, nil)
	out := filepath.Join(et.Dir, "outputs", "model")
	et.Command = []string{"sh", "-c", `mkdir -p "$(dirname "$0")" && echo trained > "$0"`}
	et.Args = []string{out}
	res, err := ex.Run(t.Context(), et)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("run: %v %+v (stderr %q)", err, res, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil || string(b) != "trained\n" {
		t.Errorf("output on the host: %q, %v", b, err)
	}
}

func testCancel(t *testing.T, ex contract.Executor, image string) {
	et, _, _ := task(t, ex, image, []string{"sh", "-c", `trap '' TERM; sleep 60 & wait; sleep 60`}, nil)
	started := make(chan struct{})
	var once sync.Once
	et.Started = func(string) { once.Do(func() { close(started) }) }
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type result struct {
		res *contract.ExecResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := ex.Run(ctx, et)
		done <- result{res, err}
	}()
	select {
	case <-started:
	case <-time.After(60 * time.Second):
		t.Fatal("the step never started")
	}
	time.Sleep(200 * time.Millisecond) // let the shell set its trap
	begin := time.Now()
	cancel()
	select {
	case r := <-done:
		if r.err == nil && r.res != nil && r.res.ExitCode == 0 {
			t.Errorf("a cancelled step that ignores SIGTERM reports success: %+v", r.res)
		}
		if d := time.Since(begin); d > 30*time.Second {
			t.Errorf("cancel took %s", d)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}
