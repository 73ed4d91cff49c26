package ui

import (
	"cmp"
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/mlpipe/mlpipe/bench"
	"github.com/mlpipe/mlpipe/contract"
	"github.com/mlpipe/mlpipe/kfpir"
)

type kv struct{ Key, Value string }

func sortedKV(m map[string]any) []kv {
	var out []kv
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, kv{k, fmtValue(m[k])})
	}
	return out
}

// artifactLink is an output artifact of a task, for the run and task pages.
type artifactLink struct {
	Task, Name, URI, Type string
	Size                  int64
}

// bigRun is the number of tasks above which the run page leaves out its
// timeline and the rest of its task table unless asked (runData).
const bigRun = 300

type runData struct {
	Run      runRow
	Record   *contract.RunRecord
	Params   []kv
	Outputs  []kv
	DAG      *dagView
	Expanded bool   // every loop expanded
	ExpandQ  string // the expansion as a query, for links
	Events   string // the events URL while the run may change
	Timeline template.HTML
	// A run of more than bigRun tasks draws its timeline on request
	// (TimelineTasks says how many) and lists the first bigRun rows of its
	// task table (MoreRows more on request): what makes such a page slow
	// to show is its size, and the graph has every task already.
	TimelineTasks int
	Rows          []*dagNode
	MoreRows      int
	Arts          []artifactLink
	CSRF          string
	CanStop       bool
	// Bench links to the benchmark report of the bench that made the run.
	Bench string
}

func (s *Server) runPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	run, tasks, attempts, ok := s.runRecords(w, r, r.PathValue("id"))
	if !ok {
		return
	}
	var ir *kfpir.IR
	if run.IRPath != "" {
		ir, _ = kfpir.LoadIR(run.IRPath) // the path comes from the history; gone: stages from the records
	}
	exp := expansionOf(r.URL.Query())
	expanded := exp.all
	d := &runData{Run: s.row(run), Record: run, Params: sortedKV(run.Params), Outputs: sortedKV(run.Outputs),
		DAG: layoutDAG(run.ID, ir, run.Params, tasks, exp), Expanded: expanded, ExpandQ: exp.query(), CSRF: s.csrf}
	if s.live(run) {
		d.Events = "/runs/" + urlID(run.ID) + "/events"
		if q := exp.query(); q != "" {
			d.Events += "?" + q
		}
		d.CanStop = s.o.Cancel != nil && s.state(run) == contract.Running
	}
	if ids := s.benchSession(ctx, run); len(ids) > 0 {
		d.Bench = benchURL(ids)
	}
	q := r.URL.Query()
	if len(tasks) <= bigRun || q.Get("timeline") != "" {
		// bench.TimelineSVG escapes every name it draws.
		d.Timeline = template.HTML(bench.TimelineSVG(run, tasks, attempts))
	} else {
		d.TimelineTasks = len(tasks)
	}
	d.Rows = d.DAG.Nodes
	if len(d.Rows) > bigRun && q.Get("all") == "" {
		d.Rows, d.MoreRows = d.Rows[:bigRun], len(d.Rows)-bigRun
	}
	for _, t := range tasks {
		for _, name := range slices.Sorted(maps.Keys(t.Outputs.Artifacts)) {
			for _, a := range t.Outputs.Artifacts[name] {
				d.Arts = append(d.Arts, artifactLink{Task: t.Path, Name: name, URI: a.URI, Type: a.Type, Size: a.Size})
			}
		}
	}
	s.render(w, "run", "Run "+run.ID, "runs", d)
}

// runAPI is the run as `mlpipe runs show --output json` prints it.
func (s *Server) runAPI(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if s.o.RunJSON == nil {
		http.Error(w, "not available", http.StatusNotImplemented)
		return
	}
	if _, err := s.o.History.Run(r.Context(), id); err != nil {
		s.notFoundOr(w, err)
		return
	}
	v, err := s.o.RunJSON(r.Context(), id)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, v)
}

// sse writes server-sent events.
type sse struct {
	w http.ResponseWriter
	f http.Flusher
}

func startSSE(w http.ResponseWriter) (*sse, bool) {
	f, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return nil, false
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	f.Flush()
	return &sse{w, f}, true
}

// sseWriteTimeout bounds one event's write: a client that stops reading
// ends its stream instead of holding the handler.
const sseWriteTimeout = 30 * time.Second

func (e *sse) send(event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_ = http.NewResponseController(e.w).SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	if _, err := fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", event, b); err != nil {
		return err
	}
	e.f.Flush()
	return nil
}

// runEvents streams the changes of a run's node states while the run goes
// on: the history is read every Poll and only nodes whose state, reason,
// duration or count changed are sent. The first event holds every node;
// the stream ends with an "end" event once the run is final.
func (s *Server) runEvents(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	if _, err := s.o.History.Run(ctx, id); err != nil {
		s.notFoundOr(w, err)
		return
	}
	exp := expansionOf(r.URL.Query())
	ev, ok := startSSE(w)
	if !ok {
		return
	}
	last := map[string]nodeState{}
	lastRun := runRow{}
	tick := time.NewTicker(s.o.Poll)
	defer tick.Stop()
	for {
		run, err := s.o.History.Run(ctx, id)
		if err != nil {
			_ = ev.send("error", err.Error())
			return
		}
		tasks, err := s.o.History.Tasks(ctx, id)
		if err != nil {
			_ = ev.send("error", err.Error())
			return
		}
		var changed []nodeState
		for k, st := range nodeStates(tasks, exp) {
			if old, ok := last[k]; !ok || old != *st {
				last[k] = *st
				changed = append(changed, *st)
			}
		}
		if len(changed) > 0 {
			slices.SortFunc(changed, func(a, b nodeState) int { return cmp.Compare(a.Path, b.Path) })
			if err := ev.send("tasks", changed); err != nil {
				return
			}
		}
		row := s.row(run)
		if row.State != lastRun.State {
			if err := ev.send("run", map[string]string{"state": row.State, "duration": row.Duration}); err != nil {
				return
			}
			lastRun = row
		}
		if !s.live(run) {
			_ = ev.send("end", map[string]string{"state": row.State})
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// timelineSVG serves the run's timeline alone, for the page to redraw it
// when the run ends (the one drawn with the page stops where the run
// was).
func (s *Server) timelineSVG(w http.ResponseWriter, r *http.Request) {
	run, tasks, attempts, ok := s.runRecords(w, r, r.PathValue("id"))
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(bench.TimelineSVG(run, tasks, attempts))
}

// runRecords reads a run with its tasks and attempts; on an error it has
// answered the request and returns false.
func (s *Server) runRecords(w http.ResponseWriter, r *http.Request, id string) (*contract.RunRecord, []*contract.TaskRecord, []*contract.AttemptRecord, bool) {
	ctx := r.Context()
	run, err := s.o.History.Run(ctx, id)
	if err != nil {
		s.notFoundOr(w, err)
		return nil, nil, nil, false
	}
	tasks, err := s.o.History.Tasks(ctx, run.ID)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err.Error())
		return nil, nil, nil, false
	}
	attempts, err := s.o.History.Attempts(ctx, run.ID, "")
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err.Error())
		return nil, nil, nil, false
	}
	return run, tasks, attempts, true
}

// runIDs reads ?runs=a,b&runs=c: distinct ids, in order.
func runIDs(r *http.Request) []string {
	var ids []string
	for _, v := range r.URL.Query()["runs"] {
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); id != "" && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}
