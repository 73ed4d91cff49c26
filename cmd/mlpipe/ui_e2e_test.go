package main

import (
	"bufio"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestUIServesARun runs the quickstart pipeline, starts mlpipe ui on a free
// port, reads the run page, a task's log and the run's JSON, and stops it
// with Ctrl-C.
func TestUIServesARun(t *testing.T) {
	c := newCLI(t)
	c.mustRun("run", "pipelines/quickstart", "-p", "who=<b>ui</b>")
	run := c.show("latest")
	cmd := exec.Command(mlpipeBin, "ui", "--listen", "127.0.0.1:0")
	cmd.Dir, cmd.Env = c.dir, c.env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	})
	lines := bufio.NewScanner(out)
	if !lines.Scan() {
		t.Fatalf("mlpipe ui printed nothing; stderr: %s", stderr.String())
	}
	base := regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+/`).FindString(lines.Text())
	if base == "" {
		t.Fatalf("no URL in %q", lines.Text())
	}
	go func() {
		io.Copy(io.Discard, out)
		exited <- cmd.Wait()
	}()
	get := func(path string) string {
		t.Helper()
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d\n%s", path, res.StatusCode, b)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
		return string(b)
	}
	page := get("runs/" + run.RunID)
	for _, task := range []string{"greet", "write", "count"} {
		if want := `<g class="node state-SUCCEEDED" data-path="` + task + `"`; !strings.Contains(page, want) {
			t.Errorf("run page: no %s", want)
		}
	}
	if strings.Contains(page, "<b>ui</b>") || !strings.Contains(page, "&lt;b&gt;ui&lt;/b&gt;") {
		t.Errorf("run page: the parameter is not escaped")
	}
	taskPage := get("runs/" + run.RunID + "/tasks/greet")
	m := regexp.MustCompile(`(?s)<pre id="log" class="log">(.*?)</pre>`).FindStringSubmatch(taskPage)
	if m == nil {
		t.Fatalf("task page has no log:\n%s", taskPage)
	}
	wantLog := c.mustRun("logs", run.RunID, "greet").stdout
	if got := html.UnescapeString(m[1]); got != wantLog || !strings.Contains(got, "greeted <b>ui</b>") {
		t.Errorf("log on the page %q, mlpipe logs says %q", got, wantLog)
	}
	if strings.Contains(m[1], "<b>") {
		t.Errorf("the log is not escaped: %q", m[1])
	}
	var fromUI, fromCLI any
	if err := json.Unmarshal([]byte(get("api/runs/"+run.RunID)), &fromUI); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(c.mustRun("runs", "show", run.RunID, "--output", "json").stdout), &fromCLI); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fromCLI, fromUI); diff != "" {
		t.Errorf("/api/runs differs from runs show --output json (-cli +ui):\n%s", diff)
	}
	if list := get(""); !strings.Contains(list, `href="/runs/`+run.RunID+`"`) {
		t.Errorf("runs list has no link to the run")
	}
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("mlpipe ui after Ctrl-C: %v; stderr: %s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("mlpipe ui did not stop on Ctrl-C")
	}
}

// TestUIRefusesARemoteAddress: a non-loopback --listen needs --allow-remote.
func TestUIRefusesARemoteAddress(t *testing.T) {
	c := newCLI(t)
	r := c.run("ui", "--listen", "0.0.0.0:0")
	if r.code != 2 || !strings.Contains(r.stderr, "--allow-remote") {
		t.Errorf("ui --listen 0.0.0.0:0: exit %d, stderr %s", r.code, r.stderr)
	}
}
