package main

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// The security test group: `make test` runs it with everything else, and
// `make test-security` runs it alone (go test -run Security ./...).

// waitComponent prints a line, waits for a file, then prints another.
const waitComponent = `name: wait
inputs:
- {name: gate, type: String}
implementation:
  container:
    image: busybox:1.36
    command:
    - sh
    - -c
    - 'echo "first line"; while [ ! -e "$0" ]; do sleep 0.05; done; echo "second line"'
    - {inputValue: gate}
`

// TestSecurityLogsFollowRunningTask: `mlpipe logs RUN TASK -f` started
// before the task shows its lines while it runs, and ends with the run.
func TestSecurityLogsFollowRunningTask(t *testing.T) {
	c := newCLI(t)
	gate := filepath.Join(t.TempDir(), "gate")
	dir := writeFiles(t, map[string]string{"wait.yaml": waitComponent, "pipeline.yaml": `
name: follow
inputs:
  gate: {type: String}
tasks:
  slow: {component: wait.yaml, inputs: {gate: "${{ inputs.gate }}"}, cache: false}
`})
	runID := "follow-" + strconv.Itoa(os.Getpid())
	run := exec.Command(mlpipeBin, "run", dir, "--run-id", runID, "-p", "gate="+gate, "--output", "json")
	run.Env, run.Dir = c.env, c.dir
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = run.Process.Kill(); _ = run.Wait() }()
	// Wait for the run to be in the history, then follow the task.
	deadline := time.Now().Add(20 * time.Second)
	for c.run("runs", "show", runID).code != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the run never appeared in the history")
		}
		time.Sleep(50 * time.Millisecond)
	}
	logs := exec.Command(mlpipeBin, "logs", runID, "slow", "-f")
	logs.Env, logs.Dir = c.env, c.dir
	out, err := logs.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	logs.Stderr = &stderr
	if err := logs.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case l := <-lines:
		if l != "first line" {
			t.Errorf("first line followed = %q", l)
		}
	case <-time.After(20 * time.Second):
		_ = logs.Process.Kill()
		t.Fatalf("logs -f printed nothing while the task ran (stderr %q)", stderr.String())
	}
	// The task is still waiting for the gate: the line came while it ran.
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var rest []string
	for l := range lines {
		rest = append(rest, l)
	}
	if err := logs.Wait(); err != nil {
		t.Errorf("logs -f: %v (stderr %q)", err, stderr.String())
	}
	if strings.Join(rest, "\n") != "second line" {
		t.Errorf("after the gate, logs -f printed %q", rest)
	}
	if err := run.Wait(); err != nil {
		t.Errorf("run: %v", err)
	}
}

// TestSecurityLogsAfterKill9: a run killed with -9 while a task runs keeps
// the log it wrote; `mlpipe logs` shows it.
func TestSecurityLogsAfterKill9(t *testing.T) {
	c := newCLI(t)
	gate := filepath.Join(t.TempDir(), "gate") // never created
	dir := writeFiles(t, map[string]string{"wait.yaml": waitComponent, "pipeline.yaml": `
name: killed
inputs:
  gate: {type: String}
tasks:
  slow: {component: wait.yaml, inputs: {gate: "${{ inputs.gate }}"}, cache: false}
`})
	runID := "killed-" + strconv.Itoa(os.Getpid())
	run := exec.Command(mlpipeBin, "run", dir, "--run-id", runID, "-p", "gate="+gate, "--output", "text")
	run.Env, run.Dir = c.env, c.dir
	stdout, err := run.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	seen := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "first line") {
				seen <- true
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case <-seen:
	case <-time.After(20 * time.Second):
		_ = run.Process.Kill()
		t.Fatal("the task never printed its first line")
	}
	if err := run.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = run.Wait()
	r := c.mustRun("logs", runID, "slow")
	if strings.TrimSpace(r.stdout) != "first line" {
		t.Errorf("logs of the killed run's task = %q, want the line it wrote", r.stdout)
	}
	if all := c.mustRun("logs", runID).stdout; !strings.Contains(all, "slow | first line") {
		t.Errorf("logs of the killed run = %q", all)
	}
}

const escapingIR = `pipelineInfo: {name: p}
schemaVersion: 2.1.0
deploymentSpec:
  executors:
    exec-a:
      container: {image: busybox:1.36, command: [sh, -c, 'echo pwned > "$0"/owned', "{{$.outputs.artifacts['out'].path}}"]}
components:
  comp-a:
    executorLabel: exec-a
    outputDefinitions:
      artifacts:
        out: {artifactType: {schemaTitle: system.Artifact, schemaVersion: 0.0.1}}
root:
  dag:
    tasks:
      "../../../../victim":
        taskInfo: {name: a}
        componentRef: {name: comp-a}
`

// TestSecurityEscapingIRIsRefusedEverywhere: IR whose task key climbs out of
// the state directory is refused by validate, plan, run and submit with
// the file, line and field, exit code 2, and nothing is written.
func TestSecurityEscapingIRIsRefusedEverywhere(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	ir := filepath.Join(dir, "hostile.yaml")
	if err := os.WriteFile(ir, []byte(escapingIR), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"validate", ir}, {"plan", ir}, {"run", ir}, {"bench", ir, "--repeat", "1"}} {
		r := c.run(args...)
		if r.code != 2 {
			t.Errorf("%s: exit %d, want 2\n%s", args[0], r.code, r.stderr)
		}
		want := ir + ":16:7: root.dag.tasks.../../../../victim: name"
		if !strings.Contains(r.stderr, want) {
			t.Errorf("%s: stderr lacks %q:\n%s", args[0], want, r.stderr)
		}
	}
	// Nothing outside the state directory, nothing in it either.
	entries, _ := os.ReadDir(filepath.Dir(c.state))
	for _, e := range entries {
		if e.Name() != "state" && e.Name() != "config" {
			t.Errorf("created %s beside the state directory", e.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(c.state, "runs")); err == nil {
		if runs, _ := os.ReadDir(filepath.Join(c.state, "runs")); len(runs) > 0 {
			t.Errorf("a run directory was created: %v", runs)
		}
	}
}

// TestSecurityCyclicIR: a DAG component containing itself is refused by
// validate, plan and run (exit 2, the cycle named) instead of expanding
// without end.
func TestSecurityCyclicIR(t *testing.T) {
	c := newCLI(t)
	ir := filepath.Join(t.TempDir(), "cycle.yaml")
	src := `pipelineInfo: {name: p}
schemaVersion: 2.1.0
deploymentSpec:
  executors:
    exec-a: {container: {image: busybox, command: ["true"]}}
components:
  comp-a: {executorLabel: exec-a}
  comp-self:
    dag:
      tasks:
        leaf: {taskInfo: {name: leaf}, componentRef: {name: comp-a}}
        again: {taskInfo: {name: again}, componentRef: {name: comp-self}}
root:
  dag:
    tasks:
      top: {taskInfo: {name: top}, componentRef: {name: comp-self}}
`
	if err := os.WriteFile(ir, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"validate", "plan", "run"} {
		r := c.run(cmd, ir)
		if r.code != 2 || !strings.Contains(r.stderr, "cycle.yaml:12:") || !strings.Contains(r.stderr, "comp-self -> comp-self") {
			t.Errorf("%s: exit %d, stderr:\n%s", cmd, r.code, r.stderr)
		}
	}
}

// TestSecurityYAMLExpansionBomb: a small file whose aliases expand into
// hundreds of megabytes is refused by compile, validate, plan and run.
func TestSecurityYAMLExpansionBomb(t *testing.T) {
	c := newCLI(t)
	var b strings.Builder
	b.WriteString("name: bomb\nx-s: &s " + strings.Repeat("x", 4000) + "\n")
	prev := "s"
	for lvl := 1; lvl <= 3; lvl++ {
		name := "l" + strconv.Itoa(lvl)
		b.WriteString("x-" + name + ": &" + name + " [" + strings.TrimSuffix(strings.Repeat("*"+prev+", ", 40), ", ") + "]\n")
		prev = name
	}
	b.WriteString("tasks:\n  a: {component: c.yaml, inputs: {xs: *l3}}\n")
	dir := t.TempDir()
	p := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"compile", p}, {"validate", p}, {"plan", p}, {"run", p}} {
		r := c.run(args...)
		if r.code != 2 || !strings.Contains(r.stderr, "pipeline.yaml:5:") || !strings.Contains(r.stderr, "expands to more than") {
			t.Errorf("%s: exit %d, stderr:\n%s", args[0], r.code, r.stderr)
		}
	}
}

// TestSecurityInvalidInputExitsTwo: every kind of invalid input exits with
// code 2 and a message naming what is wrong.
func TestSecurityInvalidInputExitsTwo(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte(strings.Repeat("a", 33<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	loop := writeFiles(t, withComponents(map[string]string{"pipeline.yaml": `
name: typed-loop
inputs:
  xs: {type: List, default: [1, 2]}
tasks:
  nap:
    component: sleep.yaml
    for_each: ${{ inputs.xs }}
    inputs: {seconds: "${{ item }}"}
`}))
	quick := filepath.Join(c.dir, "pipelines", "quickstart")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"nosuch"}, `unknown command "nosuch"`},
		{"missing file", []string{"run", filepath.Join(dir, "missing.yaml")}, "missing.yaml: cannot open: no such file or directory"},
		{"a directory as a file", []string{"validate", dir}, "pipeline.yaml: cannot open"},
		{"a directory without pipeline.yaml", []string{"compile", dir}, "pipeline.yaml: cannot open"},
		{"over-size compile", []string{"compile", big}, "larger than the"},
		{"over-size plan", []string{"plan", big}, "larger than the"},
		{"negative parallelism", []string{"run", quick, "--max-parallel", "-1"}, "must be at least 1"},
		{"dot-dot in an object URI", []string{"run", quick, "--pipeline-root", "minio://b/../x"}, `".." segments`},
		{"compile -o into a missing directory", []string{"compile", quick, "-o", filepath.Join(dir, "no", "such", "x.yaml")}, "does not exist"},
		{"loop item of the wrong type", []string{"run", loop, "-p", `xs=[1, "a"]`}, "item 1 of parameter xs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := c.run(tc.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "no")); err == nil {
		t.Error("compile -o created the missing directories")
	}
}

// TestSecurityChangedCachedOutputIsACacheMiss: an object replaced in MinIO
// behind mlpipe's back (same size, no mlpipe metadata) makes the consumer
// fail at staging once, with the reason; the cache entry is dropped, so the
// next run re-runs the producer and succeeds, instead of failing forever.
func TestSecurityChangedCachedOutputIsACacheMiss(t *testing.T) {
	c, srv := minioCLI(t)
	dir := writeFiles(t, withComponents(map[string]string{
		"cat.yaml": `
name: cat
inputs: [{name: data, type: Artifact}]
implementation: {container: {image: busybox, command: [sh, -c, 'cat "$0"'], args: [{inputPath: data}]}}
`,
		"pipeline.yaml": `
name: changed
tasks:
  make: {component: sleep.yaml, inputs: {seconds: 0, tag: made}}
  read: {component: cat.yaml, inputs: {data: "${{ tasks.make.outputs.out }}"}, cache: false}
`}))
	root := "minio://mlpipeline/changed"
	r, last := c.runJSON(dir, "--pipeline-root", root)
	if r.code != 0 {
		t.Fatalf("first run: exit %d\n%s", r.code, r.stderr)
	}
	var uri string
	for _, tk := range c.show(last["run_id"].(string)).Tasks {
		if tk.Name == "make" {
			uri = tk.Outputs.Artifacts["out"][0].URI
		}
	}
	// Same size, other content, no mlpipe metadata: as `mc cp` would leave it.
	_, key, _ := strings.Cut(strings.TrimPrefix(uri, "minio://"), "/")
	cl, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	evil := "OUTPUT OF MADE\n"
	if _, err := cl.PutObject(t.Context(), "mlpipeline", key, strings.NewReader(evil), int64(len(evil)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	r, last = c.runJSON(dir, "--pipeline-root", root)
	if r.code != 3 || !strings.Contains(r.stdout+r.stderr, "changed outside mlpipe") || !strings.Contains(r.stdout+r.stderr, "1 cache entry pointing at it dropped") {
		t.Fatalf("second run: exit %d, want 3 naming the changed input\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r, last = c.runJSON(dir, "--pipeline-root", root)
	if r.code != 0 {
		t.Fatalf("third run: exit %d\n%s", r.code, r.stderr)
	}
	for _, tk := range c.show(last["run_id"].(string)).Tasks {
		if tk.State != "SUCCEEDED" {
			t.Errorf("third run: %s %s, want SUCCEEDED (the producer re-run)", tk.Name, tk.State)
		}
	}
}

// TestSecurityProjectConfigIsNotTrusted: an mlpipe.yaml that came with a
// project cannot send the KFP token elsewhere or switch the executor unless
// the user trusts its directory; harmless settings apply, and the banner
// names where each setting came from.
func TestSecurityProjectConfigIsNotTrusted(t *testing.T) {
	c := newCLI(t)
	quick := filepath.Join(c.dir, "pipelines", "quickstart")
	proj := t.TempDir()
	c.dir = proj
	hostile := "kfp:\n  host: https://attacker.example\nexecutor: process\nmax_parallel: 1\n"
	if err := os.WriteFile(filepath.Join(proj, "mlpipe.yaml"), []byte(hostile), 0o644); err != nil {
		t.Fatal(err)
	}
	r := c.run("plan", quick)
	if r.code != 2 || !strings.Contains(r.stderr, "mlpipe.yaml sets kfp.host, executor") || !strings.Contains(r.stderr, "trusted_projects") {
		t.Fatalf("untrusted project config: exit %d\n%s", r.code, r.stderr)
	}
	// Trusted through the user's own configuration: accepted.
	userCfg := filepath.Join(c.home(), "config", "mlpipe", "config.yaml")
	if err := os.MkdirAll(filepath.Dir(userCfg), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(userCfg, []byte("trusted_projects: ["+proj+"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := c.run("plan", quick); r.code != 0 {
		t.Fatalf("trusted project config: exit %d\n%s", r.code, r.stderr)
	}
	// A project file cannot trust itself.
	os.Remove(userCfg)
	selfTrust := "trusted_projects: [" + proj + "]\nexecutor: process\n"
	if err := os.WriteFile(filepath.Join(proj, "mlpipe.yaml"), []byte(selfTrust), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := c.run("plan", quick); r.code != 2 {
		t.Fatalf("a project file trusting itself: exit %d\n%s", r.code, r.stderr)
	}
	// Harmless settings apply, and the banner names their source.
	if err := os.WriteFile(filepath.Join(proj, "mlpipe.yaml"), []byte("max_parallel: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = c.run("run", quick)
	if r.code != 0 || !strings.Contains(r.stderr, "max_parallel=1 (mlpipe.yaml)") || !strings.Contains(r.stderr, "executor=process (env MLPIPE_EXECUTOR)") {
		t.Fatalf("exit %d, banner:\n%s", r.code, r.stderr)
	}
}

// home is the temporary home of a cli: its state and config are below it.
func (c *cli) home() string { return filepath.Dir(c.state) }
