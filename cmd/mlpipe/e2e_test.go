package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mlpipe/mlpipe/metadata"
)

// mlpipeBin is the binary under test, built once by TestMain (or given by
// MLPIPE_BIN, e.g. the Makefile's bin/mlpipe).
var mlpipeBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if b := os.Getenv("MLPIPE_BIN"); b != "" {
		abs, err := filepath.Abs(b)
		if err != nil {
			panic(err)
		}
		mlpipeBin = abs
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "mlpipe-e2e-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	mlpipeBin = filepath.Join(dir, "mlpipe")
	cmd := exec.Command("go", "build", "-o", mlpipeBin, ".")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		panic("build mlpipe: " + err.Error())
	}
	return m.Run()
}

// cli runs the binary in an isolated state directory.
type cli struct {
	t     *testing.T
	state string
	env   []string
	dir   string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	home := t.TempDir()
	c := &cli{t: t, state: filepath.Join(home, "state"), dir: repoRoot(t)}
	c.env = append(os.Environ(),
		"MLPIPE_STATE_DIR="+c.state,
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"),
		"MLPIPE_EXECUTOR=process",
		"MLPIPE_GPU_LOCK_DIR="+filepath.Join(home, "gpulocks"),
	)
	return c
}

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

type result struct {
	code           int
	stdout, stderr string
}

func (c *cli) run(args ...string) result {
	c.t.Helper()
	cmd := exec.Command(mlpipeBin, args...)
	cmd.Dir = c.dir
	cmd.Env = c.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("run mlpipe: %v", err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func (c *cli) mustRun(args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("mlpipe %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// runJSON runs a pipeline with --output json and returns the final event.
func (c *cli) runJSON(args ...string) (result, map[string]any) {
	c.t.Helper()
	r := c.run(append([]string{"run", "--output", "json"}, args...)...)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		c.t.Fatalf("last line of --output json is not JSON: %q (stderr %s)", lines[len(lines)-1], r.stderr)
	}
	return r, last
}

type shownRun struct {
	RunID      string `json:"run_id"`
	Pipeline   string `json:"pipeline"`
	State      string `json:"state"`
	StartedAt  string `json:"started_at"`
	FinishedAt string `json:"finished_at"`
	Tasks      []struct {
		Name       string   `json:"name"`
		Path       string   `json:"path"`
		State      string   `json:"state"`
		Reason     string   `json:"reason"`
		Attempts   int      `json:"attempts"`
		DurationMS int64    `json:"duration_ms"`
		GPUs       []string `json:"gpus"`
		Outputs    struct {
			Parameters map[string]any `json:"parameters"`
			Artifacts  map[string][]struct {
				URI      string         `json:"uri"`
				Digest   string         `json:"digest"`
				Metadata map[string]any `json:"metadata"`
			} `json:"artifacts"`
		} `json:"outputs"`
	} `json:"tasks"`
}

func (c *cli) show(runID string) shownRun {
	c.t.Helper()
	r := c.mustRun("runs", "show", runID, "--output", "json")
	var s shownRun
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		c.t.Fatalf("runs show --output json: %v\n%s", err, r.stdout)
	}
	return s
}

// waitForFile waits up to 20 s for a file a step writes when it starts (a
// pid file); if it never comes, it kills the mlpipe process and fails with
// the message.
func waitForFile(t *testing.T, cmd *exec.Cmd, path, msg string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatal(msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func openTestHistory(c *cli) (*metadata.Store, error) {
	return metadata.Open(filepath.Join(c.state, "mlpipe.db"))
}
