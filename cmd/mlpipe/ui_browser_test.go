package main

import (
	"bufio"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mlpipe/mlpipe/internal/browsertest"
)

// startUI starts `mlpipe ui --listen 127.0.0.1:0` for the CLI's state and
// returns its base URL; it stops with the test.
func startUI(t *testing.T, c *cli) string {
	t.Helper()
	cmd := exec.Command(mlpipeBin, "ui", "--listen", "127.0.0.1:0")
	cmd.Dir, cmd.Env = c.dir, c.env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindString(sc.Text()); m != "" {
				found <- m
				break
			}
		}
		_, _ = bufio.NewReader(out).WriteTo(discardWriter{})
	}()
	select {
	case u := <-found:
		return u
	case <-time.After(20 * time.Second):
		t.Fatal("mlpipe ui printed no http://127.0.0.1:PORT address")
	}
	return ""
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// uiPipeline: a step that waits for a gate file (so that the test sees it
// RUNNING, then SUCCEEDED without reloading the page), an HTML artifact
// that tries to reach the page around it, and a step skipped by a false
// condition.
func uiPipeline(t *testing.T, gate string) string {
	return writeFiles(t, map[string]string{
		"pipeline.yaml": `name: ui-live
inputs:
  gate: {type: String}
tasks:
  gate:
    component: gate.yaml
    inputs: {path: "${{ inputs.gate }}"}
  report:
    component: report.yaml
    after: [gate]
  never:
    component: gate.yaml
    when: inputs.gate == "no such gate"
    inputs: {path: "/nonexistent"}
`,
		"gate.yaml": `name: gate
inputs:
- {name: path, type: String}
implementation:
  container:
    image: busybox:1.36
    command: [sh, -c, 'echo "waiting for the gate <b>"; for i in $(seq 1 600); do [ -e "$0" ] && echo "gate open" && exit 0; sleep 0.1; done; exit 1', {inputValue: path}]
`,
		"report.yaml": `name: report
outputs:
- {name: page, type: HTML}
implementation:
  container:
    image: busybox:1.36
    command: [sh, -c, 'printf "%s" "<h1 id=h>report</h1><script>try{parent.document.title=\"pwned\"}catch(e){}; try{top.location=\"about:blank\"}catch(e){}; document.title=\"ran\"</script><img src=x onerror=\"parent.document.title=\\\"pwned2\\\"\">" > "$0"', {outputPath: page}]
`,
	})
}

// TestUIInBrowser starts mlpipe ui, runs a pipeline in another process and
// checks in a real headless Chromium: the DAG node of a running step turns
// SUCCEEDED live, the task's log appears, a skipped task shows its reason,
// an HTML artifact cannot reach the page that shows it, pipelines/training's
// ClassificationMetrics draw a confusion matrix; it writes screenshots of
// the run and compare pages (into MLPIPE_SCREENSHOTS when set).
func TestUIInBrowser(t *testing.T) {
	ctx := browsertest.New(t, 60*time.Second)
	c := newCLI(t)
	base := startUI(t, c)
	shots := os.Getenv("MLPIPE_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}

	gate := filepath.Join(t.TempDir(), "gate")
	dir := uiPipeline(t, gate)
	run := exec.Command(mlpipeBin, "run", dir, "-p", "gate="+gate, "--output", "json")
	run.Dir, run.Env = c.dir, c.env
	stdout, err := run.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = run.Process.Kill(); _ = run.Wait() }()
	var runID string
	sc := bufio.NewScanner(stdout)
	for runID == "" && sc.Scan() {
		var ev map[string]any
		if json.Unmarshal(sc.Bytes(), &ev) == nil {
			runID, _ = ev["run_id"].(string)
		}
	}
	if runID == "" {
		t.Fatal("the run printed no run_id")
	}
	go func() {
		for sc.Scan() {
		}
	}()

	node := func(name string) string { return `document.querySelector('g.node[data-name="` + name + `"]')` }
	browsertest.Do(t, ctx, 30*time.Second, chromedp.Navigate(base+"/runs/"+runID))
	browsertest.Get(t, ctx, 30*time.Second, chromedp.Poll[bool](node("gate")+` && `+node("gate")+`.classList.contains("state-RUNNING")`))
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// No reload: the server-sent events change the node.
	browsertest.Get(t, ctx, 30*time.Second, chromedp.Poll[bool](node("gate")+`.classList.contains("state-SUCCEEDED")`))
	browsertest.Get(t, ctx, 30*time.Second, chromedp.Poll[bool](node("report")+` && `+node("report")+`.classList.contains("state-SUCCEEDED")`))
	browsertest.Get(t, ctx, 30*time.Second, chromedp.Poll[bool](node("never")+` && `+node("never")+`.classList.contains("state-SKIPPED")`))
	reason := browsertest.Get(t, ctx, 10*time.Second, chromedp.Evaluate[string](`Array.from(document.querySelectorAll('.reason')).map(e => e.textContent).join(" | ")`))
	if !strings.Contains(reason, "condition") || !strings.Contains(reason, "false") {
		t.Errorf("the skipped task's reason is not shown: %q", reason)
	}
	browsertest.Get(t, ctx, 30*time.Second, chromedp.Poll[bool](`document.body.getAttribute("data-run-final") === "true"`))
	lanes := browsertest.Get(t, ctx, 10*time.Second, chromedp.Evaluate[string](`document.querySelector("#timeline").textContent`))
	if !strings.Contains(lanes, "gate") || !strings.Contains(lanes, "report") {
		t.Errorf("the timeline was not redrawn when the run ended: %q", lanes)
	}
	browsertest.Screenshot(t, ctx, filepath.Join(shots, "ui-run.png"))

	// The task's log.
	browsertest.Do(t, ctx, 30*time.Second, chromedp.Navigate(base+"/runs/"+runID+"/tasks/gate"))
	log := browsertest.Get(t, ctx, 30*time.Second, chromedp.Poll[string](`(document.querySelector("#log")||{}).textContent && document.querySelector("#log").textContent.includes("gate open") ? document.querySelector("#log").textContent : null`))
	if !strings.Contains(log, "waiting for the gate <b>") {
		t.Errorf("log %q: the step's text is not shown as text", log)
	}
	browsertest.Screenshot(t, ctx, filepath.Join(shots, "ui-task.png"))

	// The HTML artifact, sandboxed: its script does not run, nothing
	// reaches the page.
	var uri string
	for _, tk := range c.show(runID).Tasks {
		if tk.Name == "report" && len(tk.Outputs.Artifacts["page"]) == 1 {
			uri = tk.Outputs.Artifacts["page"][0].URI
		}
	}
	if uri == "" {
		t.Fatal("no report artifact")
	}
	browsertest.Do(t, ctx, 30*time.Second, chromedp.Navigate(base+"/artifacts?uri="+url.QueryEscape(uri)), chromedp.WaitVisible("#artifact-html"))
	time.Sleep(time.Second)
	title := browsertest.Get(t, ctx, 10*time.Second, chromedp.Evaluate[string](`document.title`))
	if strings.Contains(title, "pwned") {
		t.Errorf("the HTML artifact reached the page: title %q", title)
	}
	loc := browsertest.Get(t, ctx, 10*time.Second, chromedp.Evaluate[string](`location.href`))
	if !strings.HasPrefix(loc, base) {
		t.Errorf("the HTML artifact navigated the page to %s", loc)
	}

	// pipelines/training: ClassificationMetrics as a confusion matrix.
	c.mustRun("run", "pipelines/training", "-p", "threshold=0.99", "-p", "rows=200", "-p", "epochs=3")
	train := c.show("latest")
	var cm string
	for _, tk := range train.Tasks {
		if tk.Name == "evaluate" && len(tk.Outputs.Artifacts["classification_metrics"]) == 1 {
			cm = tk.Outputs.Artifacts["classification_metrics"][0].URI
		}
	}
	if cm == "" {
		t.Fatal("no classification_metrics artifact")
	}
	browsertest.Do(t, ctx, 30*time.Second, chromedp.Navigate(base+"/artifacts?uri="+url.QueryEscape(cm)), chromedp.WaitVisible("table.confusion-matrix"))
	cells := browsertest.Get(t, ctx, 10*time.Second, chromedp.Evaluate[int](`document.querySelectorAll("table.confusion-matrix td").length`))
	if cells < 4 {
		t.Errorf("the confusion matrix has %d cells, want at least 4 (2 classes)", cells)
	}
	browsertest.Screenshot(t, ctx, filepath.Join(shots, "ui-confusion-matrix.png"))

	// Two runs of pipelines/training side by side.
	c.mustRun("run", "pipelines/training", "-p", "threshold=0.5", "-p", "rows=200", "-p", "epochs=3")
	second := c.show("latest")
	browsertest.Do(t, ctx, 30*time.Second, chromedp.Navigate(base+"/compare?runs="+train.RunID+","+second.RunID))
	text := browsertest.Get(t, ctx, 10*time.Second, chromedp.Text("body"))
	if !strings.Contains(text, "threshold") {
		t.Errorf("the compare page does not show the parameters:\n%s", text)
	}
	browsertest.Screenshot(t, ctx, filepath.Join(shots, "ui-compare.png"))

	// The benchmark report of the compared runs, one click away.
	browsertest.Do(t, ctx, 30*time.Second, chromedp.Click("#bench-report"), chromedp.WaitVisible("h1"))
	h1 := browsertest.Get(t, ctx, 10*time.Second, chromedp.Text("h1"))
	if h1 != "Benchmark of training" {
		t.Errorf("the benchmark report's heading is %q", h1)
	}
}
