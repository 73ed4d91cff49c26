package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mlpipe/mlpipe/internal/procfs"
)

func TestRunQuickstartAndShow(t *testing.T) {
	c := newCLI(t)
	r := c.mustRun("run", "pipelines/quickstart", "-p", "who=tester", "-p", "repeat=4")
	if !strings.Contains(r.stdout, "SUCCEEDED") || !strings.Contains(r.stdout, "lines = 4") {
		t.Fatalf("stdout:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "greet | greeted tester") {
		t.Errorf("task output is not shown with the task name:\n%s", r.stdout)
	}
	runID := strings.Fields(lastLineWith(r.stdout, "SUCCEEDED in"))[1]
	s := c.show(runID)
	if s.State != "SUCCEEDED" || s.Pipeline != "quickstart" || len(s.Tasks) != 3 {
		t.Fatalf("runs show: %+v", s)
	}
	byName := map[string]int{}
	for i, tk := range s.Tasks {
		byName[tk.Name] = i
		if tk.State != "SUCCEEDED" || tk.Attempts != 1 || tk.GPUs == nil {
			t.Errorf("task %s: state %s attempts %d gpus %v", tk.Name, tk.State, tk.Attempts, tk.GPUs)
		}
	}
	if got := s.Tasks[byName["count"]].Outputs.Parameters["lines"]; got != 4.0 {
		t.Errorf("count.lines = %v", got)
	}
	data := s.Tasks[byName["write"]].Outputs.Artifacts["data"]
	if len(data) != 1 {
		t.Fatalf("write.data = %+v", data)
	}
	if got := fileDigest(t, data[0].URI); got != data[0].Digest {
		t.Errorf("recorded digest %s, file has %s", data[0].Digest, got)
	}
	// Logs of one task.
	if lr := c.mustRun("logs", runID, "greet"); !strings.Contains(lr.stdout, "greeted tester") {
		t.Errorf("logs: %q", lr.stdout)
	}
	// A second run is served from the cache.
	r2 := c.mustRun("run", "pipelines/quickstart", "-p", "who=tester", "-p", "repeat=4")
	if strings.Count(r2.stdout, "CACHED") != 3 {
		t.Errorf("second run is not fully cached:\n%s", r2.stdout)
	}
	// runs rm refuses to remove a run whose artifacts the cached run uses;
	// --force removes the history and the artifacts.
	if r := c.run("runs", "rm", runID); r.code != 2 || !strings.Contains(r.stderr, "used by run") {
		t.Errorf("runs rm of a run another run is cached from: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(data[0].URI); err != nil {
		t.Errorf("a refused runs rm removed an artifact: %v", err)
	}
	c.mustRun("runs", "rm", "--force", runID)
	if _, err := os.Stat(data[0].URI); !os.IsNotExist(err) {
		t.Errorf("artifact %s still exists after runs rm", data[0].URI)
	}
	if r := c.run("runs", "show", runID); r.code != 2 {
		t.Errorf("runs show of a removed run: exit %d", r.code)
	}
}

func lastLineWith(s, sub string) string {
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], sub) {
			return lines[i]
		}
	}
	return ""
}

func fileDigest(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestRunControlFlowFeatures(t *testing.T) {
	c := newCLI(t)
	r, last := c.runJSON("pipelines/control-flow")
	if r.code != 0 || last["state"] != "SUCCEEDED" {
		t.Fatalf("exit %d, last event %v\nstderr:\n%s", r.code, last, r.stderr)
	}
	if out, _ := last["outputs"].(map[string]any); out["total"] != 30.0 {
		t.Errorf("total = %v, want 30", last["outputs"])
	}
	s := c.show(last["run_id"].(string))
	states := map[string]string{}
	attempts := map[string]int{}
	for _, tk := range s.Tasks {
		states[tk.Name] = tk.State
		attempts[tk.Name] = tk.Attempts
	}
	for _, name := range []string{"square[0]", "square[1]", "square[2]", "square[3]", "sum", "celebrate", "nested/greet", "nested/count", "report"} {
		if states[name] != "SUCCEEDED" {
			t.Errorf("%s: %s", name, states[name])
		}
	}
	if states["flaky"] != "SUCCEEDED" || attempts["flaky"] != 2 {
		t.Errorf("flaky: %s after %d attempts, want SUCCEEDED after a retry", states["flaky"], attempts["flaky"])
	}
	// The condition is false with a higher threshold: celebrate is skipped.
	r2, last2 := c.runJSON("pipelines/control-flow", "-p", "threshold=100")
	if r2.code != 0 {
		t.Fatalf("exit %d: %s", r2.code, r2.stderr)
	}
	// It is in the history, by its own name and path, with the condition
	// and the values it saw: in runs show (JSON and text), logs and the
	// timeline.
	run2 := last2["run_id"].(string)
	why := "in condition-3: condition int(sum.total (30)) > int(threshold (100)) is false"
	found := false
	for _, tk := range c.show(run2).Tasks {
		if tk.Name == "celebrate" {
			found = true
			if tk.State != "SKIPPED" || tk.Path != "exit-handler-1/condition-3/celebrate" || tk.Reason != why {
				t.Errorf("celebrate = %s %s %q, want SKIPPED exit-handler-1/condition-3/celebrate %q", tk.State, tk.Path, tk.Reason, why)
			}
		}
	}
	if !found {
		t.Error("runs show does not list the skipped celebrate")
	}
	evFound := false
	for _, line := range strings.Split(strings.TrimSpace(r2.stdout), "\n") {
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) == nil && ev["path"] == "exit-handler-1/condition-3/celebrate" {
			evFound = ev["state"] == "SKIPPED" && ev["message"] == why && ev["kind"] == nil
		}
	}
	if !evFound {
		t.Errorf("no SKIPPED event for celebrate in --output json:\n%s", r2.stdout)
	}
	text := c.mustRun("runs", "show", run2).stdout
	if !regexp.MustCompile(`(?m)^celebrate +SKIPPED `).MatchString(text) || !regexp.MustCompile(`(?m)^Not run:\n +celebrate +SKIPPED +`+regexp.QuoteMeta(why)+`$`).MatchString(text) {
		t.Errorf("runs show text lacks the skipped celebrate and its reason:\n%s", text)
	}
	lg := c.run("logs", run2, "celebrate")
	if lg.code != 0 || !strings.Contains(lg.stderr, "task exit-handler-1/condition-3/celebrate was skipped, it has no log: "+why) {
		t.Errorf("logs celebrate: exit %d, stderr %q", lg.code, lg.stderr)
	}
	svg := filepath.Join(t.TempDir(), "timeline.svg")
	c.mustRun("runs", "show", run2, "--timeline", svg)
	if b, err := os.ReadFile(svg); err != nil || !strings.Contains(string(b), "celebrate SKIPPED: "+html.EscapeString(why)) {
		t.Errorf("the timeline has no skipped lane for celebrate (%v)", err)
	}
}

const exitHandlerPipeline = `
name: exit-handler
tasks:
  ok:
    component: echo.yaml
    inputs: {msg: fine}
  boom:
    component: fail.yaml
  after-boom:
    component: echo.yaml
    inputs: {msg: never}
    after: [boom]
finally:
  report:
    component: report.yaml
    inputs: {status: "${{ pipeline.status }}"}
`

var shellComponents = map[string]string{
	"echo.yaml": `
name: echo
inputs: [{name: msg, type: String}]
implementation: {container: {image: busybox, command: [sh, -c, 'echo "$0"'], args: [{inputValue: msg}]}}
`,
	"fail.yaml": `
name: fail
implementation: {container: {image: busybox, command: [sh, -c, 'echo "about to fail" >&2; exit 7']}}
`,
	"report.yaml": `
name: report
inputs: [{name: status, type: PipelineTaskFinalStatus}]
implementation: {container: {image: busybox, command: [sh, -c, 'echo "final: $0"'], args: [{inputValue: status}]}}
`,
	"sleep.yaml": `
name: sleep
inputs: [{name: seconds, type: Float}, {name: tag, type: String, default: x}]
outputs: [{name: out, type: Artifact}]
implementation:
  container:
    image: busybox
    command:
    - sh
    - -c
    - |
      [ -n "$COUNT_DIR" ] && echo run >> "$COUNT_DIR/$1"
      [ -n "$COUNT_DIR" ] && echo $$ > "$COUNT_DIR/$1.pid"
      sleep "$0"
      mkdir -p "$(dirname "$2")"
      echo "output of $1" > "$2"
    args: [{inputValue: seconds}, {inputValue: tag}, {outputPath: out}]
`,
}

func withComponents(files map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range shellComponents {
		out[k] = v
	}
	for k, v := range files {
		out[k] = v
	}
	return out
}

func TestRunFailingTaskWithExitHandler(t *testing.T) {
	c := newCLI(t)
	dir := writeFiles(t, withComponents(map[string]string{"pipeline.yaml": exitHandlerPipeline}))
	r, last := c.runJSON(dir)
	if r.code != 3 {
		t.Fatalf("exit code %d, want 3 (a task failed)\nstderr: %s", r.code, r.stderr)
	}
	if last["state"] != "FAILED" {
		t.Errorf("final event %v", last)
	}
	runID := last["run_id"].(string)
	states := map[string]string{}
	for _, tk := range c.show(runID).Tasks {
		states[tk.Name] = tk.State
	}
	if states["boom"] != "FAILED" || states["report"] != "SUCCEEDED" || states["after-boom"] != "SKIPPED" {
		t.Errorf("states = %v", states)
	}
	logs := c.mustRun("logs", runID, "report").stdout
	if !strings.Contains(logs, `"state":"FAILED"`) {
		t.Errorf("the exit handler did not see FAILED: %q", logs)
	}
	if !strings.Contains(c.mustRun("logs", runID).stdout, "boom | about to fail") {
		t.Errorf("the failing task's stderr is not in its log")
	}
}

// TestLoopParallelismLimit proves the limit from the recorded timings: the
// iterations' [start, end] intervals never overlap more than the limit, and
// do overlap up to it.
func TestLoopParallelismLimit(t *testing.T) {
	c := newCLI(t)
	dir := writeFiles(t, withComponents(map[string]string{"pipeline.yaml": `
name: limited
tasks:
  nap:
    component: sleep.yaml
    for_each: [a, b, c, d, e, f]
    parallelism: 2
    cache: false
    inputs: {seconds: 0.3, tag: "${{ item }}"}
`}))
	r, last := c.runJSON(dir, "--max-parallel", "8")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	runID := last["run_id"].(string)
	h, err := openTestHistory(c)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	attempts, err := h.Attempts(t.Context(), runID, "")
	if err != nil {
		t.Fatal(err)
	}
	type ev struct {
		at    time.Time
		delta int
	}
	var evs []ev
	for _, a := range attempts {
		for _, p := range a.Phases {
			if p.Name == "execute" {
				evs = append(evs, ev{p.Start, +1}, ev{p.End, -1})
			}
		}
	}
	if len(evs) != 12 {
		t.Fatalf("%d execute phases recorded, want 6", len(evs)/2)
	}
	sort.Slice(evs, func(i, j int) bool {
		if evs[i].at.Equal(evs[j].at) {
			return evs[i].delta < evs[j].delta
		}
		return evs[i].at.Before(evs[j].at)
	})
	cur, peak := 0, 0
	for _, e := range evs {
		cur += e.delta
		peak = max(peak, cur)
	}
	if peak != 2 {
		t.Errorf("peak overlap of iterations = %d, want the limit 2", peak)
	}
}

// TestCrashAndResume kills mlpipe with SIGKILL while the second of three
// tasks runs, then resumes the run: the first task does not run again and
// every artifact's digest matches its file.
func TestCrashAndResume(t *testing.T) {
	c := newCLI(t)
	counts := t.TempDir()
	c.env = append(c.env, "COUNT_DIR="+counts, "MLPIPE_PROCESS_PASS_ENV=COUNT_DIR")
	dir := writeFiles(t, withComponents(map[string]string{"pipeline.yaml": `
name: crash
tasks:
  first: {component: sleep.yaml, inputs: {seconds: 0, tag: first}}
  second: {component: sleep.yaml, inputs: {seconds: 30, tag: second}, after: [first]}
  third: {component: sleep.yaml, inputs: {seconds: 0, tag: third}, after: [second]}
`}))
	runID := "crash-" + strconv.Itoa(os.Getpid())
	cmd := exec.Command(mlpipeBin, "run", dir, "--run-id", runID, "--output", "json")
	cmd.Env = c.env
	cmd.Dir = c.dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(counts, "second.pid")
	waitForFile(t, cmd, pidFile, "the second task never started")
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	// The killed run is interrupted, and its task process did not outlive it.
	if ls := c.mustRun("runs", "ls"); !strings.Contains(ls.stdout, "INTERRUPTED") {
		t.Errorf("runs ls does not show the killed run as interrupted:\n%s", ls.stdout)
	}
	waitGone(t, pidFile)
	r := c.run("run", "--resume", runID, "--output", "json")
	if r.code != 0 {
		t.Fatalf("resume: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for tag, want := range map[string]int{"first": 1, "second": 2, "third": 1} {
		b, _ := os.ReadFile(filepath.Join(counts, tag))
		if got := strings.Count(string(b), "run"); got != want {
			t.Errorf("%s ran %d times, want %d", tag, got, want)
		}
	}
	s := c.show(runID)
	if s.State != "SUCCEEDED" || len(s.Tasks) != 3 {
		t.Fatalf("after resume: %s with %d tasks", s.State, len(s.Tasks))
	}
	for _, tk := range s.Tasks {
		for _, a := range tk.Outputs.Artifacts["out"] {
			if got := fileDigest(t, a.URI); got != a.Digest {
				t.Errorf("%s: recorded digest %s, file %s", tk.Name, a.Digest, got)
			}
		}
	}
}

func waitGone(t *testing.T, pidFile string) {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if alive := procfs.WaitGone([]int{pid}, 5*time.Second); len(alive) > 0 {
		t.Errorf("task process %d outlived mlpipe", pid)
	}
}

func TestCtrlCCancelsRun(t *testing.T) {
	c := newCLI(t)
	counts := t.TempDir()
	c.env = append(c.env, "COUNT_DIR="+counts, "MLPIPE_PROCESS_PASS_ENV=COUNT_DIR")
	dir := writeFiles(t, withComponents(map[string]string{"pipeline.yaml": `
name: cancel
tasks:
  long: {component: sleep.yaml, inputs: {seconds: 60, tag: long}}
`}))
	cmd := exec.Command(mlpipeBin, "run", dir, "--run-id", "cancel-me")
	cmd.Env = c.env
	cmd.Dir = c.dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(counts, "long.pid")
	waitForFile(t, cmd, pidFile, "the task never started")
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v, want code 130", err)
	}
	waitGone(t, pidFile)
	if s := c.show("cancel-me"); s.State != "CANCELED" {
		t.Errorf("state = %s, want CANCELED", s.State)
	}
}

func TestInvalidInputExitsTwo(t *testing.T) {
	c := newCLI(t)
	dir := writeFiles(t, withComponents(map[string]string{"pipeline.yaml": `
name: Bad_Name
inputs:
  n: {type: Integer, default: "three"}
tasks:
  a:
    component: echo.yaml
    inputs: {msg: "${{ tasks.nope.outputs.x }}", extra: 1}
  b:
    component: missing.yaml
  c:
    component: echo.yaml
    when: "inputs.n >"
    inputs: {msg: hi}
`}))
	r := c.run("validate", filepath.Join(dir, "pipeline.yaml"))
	if r.code != 2 {
		t.Fatalf("validate exit %d, want 2\n%s%s", r.code, r.stdout, r.stderr)
	}
	out := r.stderr
	for _, want := range []string{
		"pipeline.yaml:2:7: pipeline name \"Bad_Name\"",
		"pipeline.yaml:4:31: default of input \"n\"",
		"unknown task \"nope\"",
		"has no input \"extra\"",
		"missing.yaml",
		"when: invalid CEL",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "goroutine") || strings.Contains(out, "panic") {
		t.Errorf("stack trace in output:\n%s", out)
	}
	for _, args := range [][]string{
		{"run", "pipelines/quickstart", "-p", "repeat=many"},
		{"run", "pipelines/quickstart", "-p", "nope=1"},
		{"plan", "pipelines/quickstart", "--format", "png"},
		{"run"},
		{"compile", "does/not/exist"},
	} {
		r := c.run(args...)
		want := 2 // a missing file too
		if r.code != want {
			t.Errorf("mlpipe %s: exit %d, want %d\n%s", strings.Join(args, " "), r.code, want, r.stderr)
		}
	}
}

func TestPlanShowsParallelStagesAndCriticalPath(t *testing.T) {
	c := newCLI(t)
	out := c.mustRun("plan", "pipelines/control-flow", "-p", "shards=[1,2,3]").stdout
	for _, want := range []string{"T00", "[P] square[2]", "Critical path", "exit handler", "if int(inputs.parameter_values"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "square[3]") {
		t.Errorf("plan expanded 4 iterations for 3 shards")
	}
	for _, f := range []string{"json", "dot", "mermaid"} {
		if r := c.mustRun("plan", "pipelines/control-flow", "--format", f); len(r.stdout) < 50 {
			t.Errorf("--format %s printed %q", f, r.stdout)
		}
	}
}
