package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mlpipe/mlpipe/contract"
	"github.com/mlpipe/mlpipe/metadata"
)

func TestRoutes(t *testing.T) {
	ts := newTestServer(t)
	art := func(name string) string { return url.QueryEscape(ts.dir + "/" + name) }
	for _, tc := range []struct {
		target string
		status int
		want   []string
	}{
		{"/", 200, []string{`<table class="runs" id="runs" data-live="/api/runs"`, `href="/runs/r1"`, "who=&lt;script&gt;", "page 1 of 1 (2 runs)"}},
		{"/api/runs", 200, []string{`"run_id": "r2"`, `"total": 2`}},
		{"/runs/r1", 200, []string{`<g class="node state-SUCCEEDED" data-path="train" data-name="train">`, `<g class="node state-CACHED" data-path="prepare"`,
			`<g class="node state-SKIPPED" data-path="condition-1/&lt;script&gt;`, `data-path="for-loop-2/eval"`, "×2 (2 done)",
			`class="group"`, ">for-loop-2<", `<svg xmlns="http://www.w3.org/2000/svg"`, `href="/api/runs/r1"`, `<td class="reason">condition false: &lt;script&gt;`}},
		{"/runs/r1?expand=1", 200, []string{`data-path="for-loop-2[0]/eval"`, `data-path="for-loop-2[1]/eval"`}},
		{"/runs/r2", 200, []string{`data-events="/runs/r2/events"`, `<g class="node state-RUNNING" data-path="a"`, `<g class="node state-PENDING" data-path="b"`, `name="csrf" value="` + ts.csrf + `"`}},
		{"/runs/nope", 404, []string{"run nope"}},
		{"/api/runs/r1", 200, []string{`"run_id": "r1"`}},
		{"/api/runs/nope", 404, nil},
		{"/runs/r1/tasks/train", 200, []string{`<pre id="log" class="log">hello` + "\n&lt;script&gt;", "GPU-1 (2 samples)", `<polyline class="util" points="0.0,21.8 120.0,4.2"/>`, "loss", "execute 2s",
			`<table class="kv" id="input-params"><tr><th>epochs</th><td>3</td></tr><tr><th>note</th><td>&lt;script&gt;`}},
		{"/runs/r1/tasks/prepare", 200, []string{"Cache key <code>k1</code>", `href="/runs/r0/tasks/prepare"`, "has no log"}},
		{"/runs/r1/tasks/condition-1/" + url.PathEscape(hostile), 200, []string{`<p class="reason" id="reason">condition false: &lt;script&gt;`}},
		{"/runs/r1/tasks/nope", 404, nil},
		{"/runs/r2/tasks/a", 200, []string{`data-stream="/runs/r2/tasks/a/log?attempt=1&amp;offset=0"`}},
		{"/artifacts?uri=" + art("metrics"), 200, []string{`<table class="metrics" id="metrics">`, "accuracy", "0.9", "&lt;script&gt;"}},
		{"/artifacts?uri=" + art("cm"), 200, []string{`<table class="confusion-matrix">`, `<td class="shade-8">8</td>`, `<td class="shade-9">9</td>`, "<th>cat</th>", `<svg class="roc"`, "AUC 0.850"}},
		{"/artifacts?uri=" + art("page.html"), 200, []string{`<iframe id="artifact-html" class="artifact-html" sandbox src="/artifacts/raw?uri=`}},
		{"/artifacts?uri=" + art("notes.md"), 200, []string{"<h1>Title</h1>", "<!-- raw HTML omitted -->"}},
		{"/artifacts?uri=" + art("data.csv"), 200, []string{`<pre class="head" id="head">a,b` + "\n1,&lt;script&gt;", "download=1"}},
		{"/artifacts?uri=" + url.QueryEscape(ts.dir+"/../../etc/passwd"), 404, []string{"no run recorded an artifact"}},
		{"/artifacts?uri=%2Fetc%2Fpasswd", 404, nil},
		{"/artifacts/raw?uri=%2Fetc%2Fpasswd", 404, nil},
		{"/gpus", 200, []string{"Mock H100", "alice", `href="/runs/r2/tasks/a"`, "42%", "n/a"}},
		{"/api/gpus", 200, []string{`"UUID": "GPU-1"`}},
		{"/compare?runs=r1,r2", 200, []string{`<table class="compare" id="compare">`, "who", "train", "train.metrics.accuracy", "2s"}},
		{"/compare?runs=r1", 400, nil},
		{"/assets/app.js", 200, []string{"EventSource"}},
		{"/assets/app.css", 200, []string{".confusion-matrix"}},
	} {
		res, body := ts.get(tc.target)
		if res.StatusCode != tc.status {
			t.Errorf("GET %s: status %d, want %d\n%s", tc.target, res.StatusCode, tc.status, clip(body, 2000))
			continue
		}
		contains(t, "GET "+tc.target, body, tc.want...)
		if strings.Contains(body, hostile) {
			t.Errorf("GET %s: the hostile string comes out unescaped", tc.target)
		}
		if strings.HasPrefix(tc.target, "/artifacts/raw") {
			continue
		}
		if got := res.Header.Get("Content-Security-Policy"); got != pageCSP {
			t.Errorf("GET %s: CSP %q", tc.target, got)
		}
		if res.Header.Get("X-Frame-Options") != "SAMEORIGIN" || res.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: headers %v", tc.target, res.Header)
		}
	}
}

// No page has an inline script or style (the CSP would block them).
func TestNoInlineScriptOrStyle(t *testing.T) {
	ts := newTestServer(t)
	bad := regexp.MustCompile(`<script>|<script [^>]*>[^<]|\sstyle="|<style|onclick=|onload=`)
	for _, p := range []string{"/", "/runs/r1", "/runs/r2", "/runs/r1/tasks/train", "/gpus", "/compare?runs=r1,r2",
		"/artifacts?uri=" + url.QueryEscape(ts.dir+"/cm")} {
		_, body := ts.get(p)
		if m := bad.FindString(body); m != "" {
			t.Errorf("%s has inline script or style: %q", p, m)
		}
	}
}

func TestRawHTMLArtifactIsSandboxed(t *testing.T) {
	ts := newTestServer(t)
	res, body := ts.get("/artifacts/raw?uri=" + url.QueryEscape(ts.dir+"/page.html"))
	want := map[string]string{
		"Content-Security-Policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:",
		"X-Content-Type-Options":  "nosniff",
		"Content-Type":            "text/html; charset=utf-8",
		"X-Frame-Options":         "",
	}
	for k, v := range want {
		if got := res.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	contains(t, "raw", body, "<h1>hi</h1>")
	res, _ = ts.get("/artifacts/raw?uri=" + url.QueryEscape(ts.dir+"/data.csv") + "&download=1")
	if ct, cd := res.Header.Get("Content-Type"), res.Header.Get("Content-Disposition"); ct != "application/octet-stream" || cd != `attachment; filename=data` {
		t.Errorf("download: %q %q", ct, cd)
	}
	res, _ = ts.get("/artifacts/raw?uri=" + url.QueryEscape(ts.dir+"/page.html") + "&download=1")
	if res.Header.Get("Content-Disposition") == "" || res.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("HTML download: %v", res.Header)
	}
}

func TestRunsListPaginationAndFilters(t *testing.T) {
	h := newFake()
	for i := range 120 {
		p, st := "alpha", contract.Succeeded
		if i%3 == 0 {
			p, st = "beta", contract.Failed
		}
		h.runs = append(h.runs, &contract.RunRecord{ID: fmt.Sprintf("run-%03d", i), Pipeline: p, State: st, StartedAt: t0.Add(time.Duration(i) * time.Second)})
	}
	s, err := New(Options{History: h})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, h: h}
	ids := regexp.MustCompile(`<tr data-run="([^"]+)">`)
	for _, tc := range []struct {
		query           string
		first, last     string
		rows            int
		prev, next, pos string
	}{
		{"", "run-119", "run-070", 50, "", "?page=2", "page 1 of 3 (120 runs)"},
		{"?page=2", "run-069", "run-020", 50, "?page=1", "?page=3", "page 2 of 3"},
		{"?page=3", "run-019", "run-000", 20, "?page=2", "", "page 3 of 3"},
		{"?pipeline=beta", "run-117", "run-000", 40, "", "", "page 1 of 1 (40 runs)"},
		{"?pipeline=alpha&state=SUCCEEDED&page=2", "run-044", "run-001", 30, "?page=1&amp;pipeline=alpha&amp;state=SUCCEEDED", "", "page 2 of 2 (80 runs)"},
		{"?state=CANCELED", "", "", 0, "", "", "No runs match"},
	} {
		_, body := ts.get("/" + tc.query)
		var got []string
		for _, m := range ids.FindAllStringSubmatch(body, -1) {
			got = append(got, m[1])
		}
		if len(got) != tc.rows || (tc.rows > 0 && (got[0] != tc.first || got[len(got)-1] != tc.last)) {
			t.Errorf("%s: rows %v", tc.query, got)
		}
		contains(t, tc.query, body, tc.pos)
		if tc.prev != "" {
			contains(t, tc.query, body, `href="`+tc.prev+`" rel="prev"`)
		}
		if tc.next != "" {
			contains(t, tc.query, body, `rel="next"`)
		}
	}
	_, body := ts.get("/api/runs?pipeline=beta")
	var l struct {
		Runs  []runRow `json:"runs"`
		Total int      `json:"total"`
	}
	if err := json.Unmarshal([]byte(body), &l); err != nil || l.Total != 40 || len(l.Runs) != 40 || l.Runs[0].ID != "run-117" {
		t.Errorf("/api/runs: %v %d", err, l.Total)
	}
}

// readEvents reads server-sent events until the stream ends.
func readEvents(t *testing.T, res *http.Response) []sseEvent {
	t.Helper()
	var out []sseEvent
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			ev.Name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.Data = strings.TrimPrefix(line, "data: ")
		case line == "":
			out = append(out, ev)
			ev = sseEvent{}
		}
	}
	return out
}

type sseEvent struct{ Name, Data string }

func TestRunEventsStreamChangesAndEnds(t *testing.T) {
	ts := newTestServer(t)
	srv := httptest.NewServer(ts)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/runs/r2/events", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	go func() {
		time.Sleep(100 * time.Millisecond)
		ts.h.set("r2", "a", contract.Succeeded, contract.Running)
		time.Sleep(100 * time.Millisecond)
		ts.h.set("r2", "b", contract.Skipped, contract.Succeeded)
	}()
	evs := readEvents(t, res)
	var tasks [][]nodeState
	for _, e := range evs {
		if e.Name == "tasks" {
			var ns []nodeState
			if err := json.Unmarshal([]byte(e.Data), &ns); err != nil {
				t.Fatal(err)
			}
			tasks = append(tasks, ns)
		}
	}
	// The first event has every node; later ones only nodes that changed
	// (a loaded machine may see both changes in one poll: fold them).
	if len(tasks) < 2 {
		t.Fatalf("task events: %v", evs)
	}
	first := []nodeState{{Path: "a", State: contract.Running}, {Path: "b", State: contract.Pending}}
	if diff := cmp.Diff(first, tasks[0], cmp.AllowUnexported(nodeState{})); diff != "" {
		t.Errorf("first task event (-want +got):\n%s", diff)
	}
	final := map[string]nodeState{}
	for _, n := range tasks[0] {
		final[n.Path] = n
	}
	for _, ev := range tasks[1:] {
		for _, n := range ev {
			if cmp.Equal(final[n.Path], n, cmp.AllowUnexported(nodeState{})) {
				t.Errorf("node %s sent again unchanged: %v", n.Path, evs)
			}
			final[n.Path] = n
		}
	}
	want := map[string]nodeState{"a": {Path: "a", State: contract.Succeeded, DurationMS: 1500}, "b": {Path: "b", State: contract.Skipped}}
	if diff := cmp.Diff(want, final, cmp.AllowUnexported(nodeState{})); diff != "" {
		t.Errorf("states after the events (-want +got):\n%s\nall: %v", diff, evs)
	}
	if last := evs[len(evs)-1]; last.Name != "end" || !strings.Contains(last.Data, "SUCCEEDED") {
		t.Errorf("the stream does not end with the run's final state: %v", evs)
	}
}

func TestLogStreamSendsAppendedBytes(t *testing.T) {
	ts := newTestServer(t)
	logPath := ts.dir + "/r2-a.log"
	if err := os.WriteFile(logPath, []byte("first\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ts)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/runs/r2/tasks/a/log?attempt=1&offset=2")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	go func() {
		time.Sleep(100 * time.Millisecond)
		f, _ := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString(hostile + "\n")
		f.Close()
		time.Sleep(100 * time.Millisecond)
		ts.h.set("r2", "a", contract.Succeeded, contract.Succeeded)
	}()
	var text string
	evs := readEvents(t, res)
	for _, e := range evs {
		if e.Name == "log" {
			var s string
			json.Unmarshal([]byte(e.Data), &s)
			text += s
		}
	}
	if text != "rst\n"+hostile+"\n" {
		t.Errorf("log stream %q (events %v)", text, evs)
	}
	for _, e := range evs {
		if strings.Contains(e.Data, "<script>") {
			t.Errorf("an event carries <script> unescaped: %q", e.Data)
		}
	}
	if evs[len(evs)-1].Name != "end" {
		t.Errorf("no end event: %v", evs)
	}
}

func TestCancelNeedsCSRFToken(t *testing.T) {
	post := func(ts *testServer, run string, form url.Values, hdr map[string]string) int {
		req := httptest.NewRequest(http.MethodPost, "/runs/"+run+"/cancel", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, _ := ts.do(req)
		return res.StatusCode
	}
	ts := newTestServer(t)
	good := url.Values{"csrf": {ts.csrf}}
	for _, tc := range []struct {
		name   string
		run    string
		form   url.Values
		hdr    map[string]string
		status int
	}{
		{"no token", "r2", url.Values{}, nil, 403},
		{"wrong token", "r2", url.Values{"csrf": {strings.Repeat("0", len(ts.csrf))}}, nil, 403},
		{"short token", "r2", url.Values{"csrf": {ts.csrf[:10]}}, nil, 403},
		{"other origin", "r2", good, map[string]string{"Origin": "http://evil.example"}, 403},
		{"cross-site fetch", "r2", good, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"finished run", "r1", good, nil, 409},
		{"unknown run", "nope", good, nil, 404},
		{"same origin", "r2", good, map[string]string{"Origin": "http://example.com", "Sec-Fetch-Site": "same-origin"}, 303},
		{"no-referrer form", "r2", good, map[string]string{"Origin": "null"}, 303},
	} {
		if got := post(ts, tc.run, tc.form, tc.hdr); got != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.status)
		}
	}
	if diff := cmp.Diff([]string{"r2", "r2"}, ts.canceled); diff != "" {
		t.Errorf("cancelled runs (-want +got):\n%s", diff)
	}
	res, _ := ts.get("/runs/r2/cancel")
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET cancel: %d", res.StatusCode)
	}
}

func TestLoopbackOnly(t *testing.T) {
	h, _ := fixture(t)
	s, err := New(Options{History: h, LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]int{"127.0.0.1:8765": 200, "localhost:8765": 200, "[::1]:8765": 200, "evil.example:8765": 421, "10.0.0.1": 421} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Host = host
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("Host %s: %d, want %d", host, rec.Code, want)
		}
	}
}

func TestRecordStagesWithoutIR(t *testing.T) {
	at := func(s, e int) (time.Time, time.Time) {
		return t0.Add(time.Duration(s) * time.Second), t0.Add(time.Duration(e) * time.Second)
	}
	mk := func(p string, s, e int) *contract.TaskRecord {
		st, en := at(s, e)
		return &contract.TaskRecord{Path: p, State: contract.Succeeded, StartedAt: st, FinishedAt: en}
	}
	got := recordStages([]*contract.TaskRecord{mk("a", 0, 2), mk("b", 0, 5), mk("c", 2, 3), mk("d", 3, 4), mk("e", 5, 6), {Path: "f", State: contract.Skipped}})
	want := map[string]int{"a": 0, "b": 0, "c": 1, "d": 2, "e": 3, "f": 0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stages (-want +got):\n%s", diff)
	}
}

// BenchmarkRunsPage10000 renders the first page of the runs list over a
// history of 10,000 runs (SQLite).
func BenchmarkRunsPage10000(b *testing.B) {
	h, err := metadata.Open(b.TempDir() + "/mlpipe.db")
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	for i := range 10000 {
		if err := h.CreateRun(ctx, &contract.RunRecord{ID: fmt.Sprintf("run-%05d", i), Pipeline: fmt.Sprintf("p%d", i%5), State: contract.Succeeded,
			StartedAt: t0.Add(time.Duration(i) * time.Second), FinishedAt: t0.Add(time.Duration(i)*time.Second + time.Second), Params: map[string]any{"i": i}}); err != nil {
			b.Fatal(err)
		}
	}
	s, err := New(Options{History: h})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		for _, target := range []string{"/", "/?pipeline=p3&page=20"} {
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
			if rec.Code != 200 {
				b.Fatal(rec.Code)
			}
		}
	}
}

// TestBigRunPage: a run of more tasks than bigRun lists the first bigRun
// in its table and draws its timeline on request; the graph has them all.
func TestBigRunPage(t *testing.T) {
	ts := newTestServer(t)
	n := bigRun + 20
	var tasks []*contract.TaskRecord
	for i := range n {
		tasks = append(tasks, &contract.TaskRecord{Path: fmt.Sprintf("t%03d", i), State: contract.Succeeded, StartedAt: t0, FinishedAt: t0.Add(time.Second)})
	}
	ts.h.mu.Lock()
	ts.h.runs = append(ts.h.runs, &contract.RunRecord{ID: "big", Pipeline: "big", State: contract.Succeeded, StartedAt: t0, FinishedAt: t0.Add(time.Minute)})
	ts.h.tasks["big"] = tasks
	ts.h.mu.Unlock()

	_, body := ts.get("/runs/big")
	if got := strings.Count(body, `<g class="node`); got != n {
		t.Errorf("graph nodes = %d, want %d", got, n)
	}
	if got := strings.Count(body, "<tr data-path="); got != bigRun {
		t.Errorf("table rows = %d, want %d", got, bigRun)
	}
	contains(t, "big run page", body, `id="more-rows"`, "20 more tasks", `href="?timeline=1"`)
	if strings.Contains(body, "<svg class=\"timeline") || strings.Contains(body, "queue</text>") {
		t.Error("the timeline is drawn without being asked for")
	}
	_, all := ts.get("/runs/big?all=1&timeline=1")
	if got := strings.Count(all, "<tr data-path="); got != n {
		t.Errorf("table rows with all=1 = %d, want %d", got, n)
	}
	if strings.Contains(all, `href="?timeline=1"`) {
		t.Error("timeline=1 still offers to draw the timeline")
	}
}

// TestBenchReport: the runs of one `mlpipe bench` link to their report,
// which the server draws from the history with mlpipe bench's own HTML,
// under a policy that allows its inline style and nothing else.
func TestBenchReport(t *testing.T) {
	ts := newTestServer(t)
	ts.h.mu.Lock()
	for i, id := range []string{"b1", "b2", "b3", "b4"} {
		start := t0.Add(time.Duration(i) * 10 * time.Second)
		if id == "b4" { // another bench, an hour later
			start = start.Add(time.Hour)
		}
		ts.h.runs = append(ts.h.runs, &contract.RunRecord{ID: id, Pipeline: "demo", Source: "bench pipelines/demo", State: contract.Succeeded,
			StartedAt: start, FinishedAt: start.Add(5 * time.Second), Executor: "process"})
		ts.h.tasks[id] = []*contract.TaskRecord{{Path: "train", State: contract.Succeeded, StartedAt: start, FinishedAt: start.Add(4 * time.Second), Attempts: 1}}
		ts.h.attempts[id] = []*contract.AttemptRecord{{RunID: id, TaskPath: "train", Attempt: 1, StartedAt: start, FinishedAt: start.Add(4 * time.Second),
			Phases: []contract.Phase{{Name: "execute", Start: start, End: start.Add(4 * time.Second)}}}}
	}
	ts.h.mu.Unlock()
	_, page := ts.get("/runs/b2")
	contains(t, "run page of a bench run", page, `href="/bench?runs=b1%2Cb2%2Cb3"`)
	_, other := ts.get("/runs/b4")
	contains(t, "run page of the later bench", other, `href="/bench?runs=b4"`)
	_, plain := ts.get("/runs/r1")
	if strings.Contains(plain, "bench-report") {
		t.Error("a run no bench made links to a benchmark report")
	}
	res, body := ts.get("/bench?runs=b1,b2,b3")
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	if got := res.Header.Get("Content-Security-Policy"); got != benchCSP {
		t.Errorf("CSP %q", got)
	}
	contains(t, "bench report", body, "demo", "train", "<svg")
	if res, _ := ts.get("/bench?runs=nope"); res.StatusCode != 404 {
		t.Errorf("unknown run: status %d", res.StatusCode)
	}
}

// TestGPUPageShowsPolicyAndQueue: excluded GPUs say so, and the steps
// waiting for GPUs are listed with their user, run and task.
func TestGPUPageShowsPolicyAndQueue(t *testing.T) {
	ts := newTestServer(t)
	_, body := ts.get("/gpus")
	contains(t, "GPU page", body, "excluded (machine policy)", `id="gpu-queue"`, "<td>bob</td>", "<td>2</td>", `href="/runs/r2"`, "sub/train")
}

// TestExpandOneLoop: a collapsed loop's row links to the page with that
// loop's iterations shown one by one, the others staying collapsed.
func TestExpandOneLoop(t *testing.T) {
	ts := newTestServer(t)
	_, body := ts.get("/runs/r1")
	contains(t, "collapsed run page", body, `<a class="expand" href="?expand=for-loop-2%2Feval">show each</a>`)
	if strings.Contains(body, `data-path="for-loop-2[0]/eval"`) {
		t.Error("iterations shown while collapsed")
	}
	_, one := ts.get("/runs/r1?expand=for-loop-2/eval")
	contains(t, "run page with one loop expanded", one, `data-path="for-loop-2[0]/eval"`, `data-path="for-loop-2[1]/eval"`)
	if got := expansionOf(url.Values{"expand": {"for-loop-2/eval"}}).query(); got != "expand=for-loop-2%2Feval" {
		t.Errorf("the events URL's query is %q", got)
	}
}
