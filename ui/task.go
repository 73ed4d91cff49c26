package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mlpipe/mlpipe/contract"
	"github.com/mlpipe/mlpipe/internal/safefile"
	"github.com/mlpipe/mlpipe/internal/units"
	"github.com/mlpipe/mlpipe/metadata"
)

// maxLogPage is how much of a log the task page shows (its end).
const maxLogPage = 1 << 20

func urlID(id string) string { return url.PathEscape(id) }

type attemptView struct {
	*contract.AttemptRecord
	Duration string
	Phases   []phaseView
	GPUs     []gpuSpark
	Current  bool
}

type phaseView struct {
	Name, Duration string
}

// gpuSpark is one GPU of an attempt with its samples as three small
// charts (SVG polyline points in a 120x24 box).
type gpuSpark struct {
	UUID                    string
	Util, Mem, Power        string
	UtilMax, MemMax, PowMax string
	Samples                 int
}

type taskData struct {
	Run         runRow
	Task        *contract.TaskRecord
	Name        string
	Reason      string
	Duration    string
	Attempts    []attemptView
	Inputs      []metadata.Input
	InParams    []kv // input parameters, from the attempt's executor input
	Params      []kv
	Arts        []artifactLink
	CachedRun   string
	CachedTask  string
	Log         string
	LogNote     string
	LogStream   string
	LogOffset   int64
	LogAttempt  int
	NoLogReason string
}

// findTask returns the task of a run at path, or nil.
func findTask(tasks []*contract.TaskRecord, path string) *contract.TaskRecord {
	for _, t := range tasks {
		if t.Path == path && t.Kind != "dag" {
			return t
		}
	}
	return nil
}

// taskRoute serves a task's page, and its log stream at .../log.
func (s *Server) taskRoute(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	run, err := s.o.History.Run(ctx, r.PathValue("id"))
	if err != nil {
		s.notFoundOr(w, err)
		return
	}
	tasks, err := s.o.History.Tasks(ctx, run.ID)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	path := r.PathValue("path")
	t := findTask(tasks, path)
	if t == nil {
		if p, ok := strings.CutSuffix(path, "/log"); ok {
			if t = findTask(tasks, p); t != nil {
				s.logStream(w, r, run, t)
				return
			}
		}
		s.fail(w, http.StatusNotFound, fmt.Sprintf("run %s has no task %s", run.ID, path))
		return
	}
	s.taskPage(w, r, run, t)
}

func (s *Server) taskPage(w http.ResponseWriter, r *http.Request, run *contract.RunRecord, t *contract.TaskRecord) {
	ctx := r.Context()
	ats, err := s.o.History.Attempts(ctx, run.ID, t.Path)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	d := &taskData{Run: s.row(run), Task: t, Name: contract.DisplayName(t.Path), Params: sortedKV(t.Outputs.Parameters)}
	if t.State == contract.Skipped || t.State == contract.Canceled || t.State == contract.Failed {
		d.Reason = t.Error
	}
	if !t.StartedAt.IsZero() && !t.FinishedAt.IsZero() {
		d.Duration = fmtDuration(t.FinishedAt.Sub(t.StartedAt))
	}
	if d.Inputs, err = s.o.History.TaskInputs(ctx, run.ID, t.Path); err != nil {
		s.fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	for _, name := range slices.Sorted(maps.Keys(t.Outputs.Artifacts)) {
		for _, a := range t.Outputs.Artifacts[name] {
			d.Arts = append(d.Arts, artifactLink{Task: t.Path, Name: name, URI: a.URI, Type: a.Type, Size: a.Size})
		}
	}
	if run, task, ok := strings.Cut(t.CachedFrom, "/"); ok {
		d.CachedRun, d.CachedTask = run, task
	}
	want, _ := strconv.Atoi(r.URL.Query().Get("attempt"))
	var shown *contract.AttemptRecord
	for i, a := range ats {
		if (want == 0 && i == len(ats)-1) || a.Attempt == want {
			shown = a
		}
	}
	for _, a := range ats {
		av := attemptView{AttemptRecord: a, Current: a == shown}
		if !a.FinishedAt.IsZero() {
			av.Duration = fmtDuration(a.FinishedAt.Sub(a.StartedAt))
		}
		for _, p := range a.Phases {
			av.Phases = append(av.Phases, phaseView{p.Name, fmtDuration(p.Duration())})
		}
		av.GPUs = sparks(a.GPUSamples)
		d.Attempts = append(d.Attempts, av)
	}
	switch {
	case shown == nil && t.State.Final():
		d.NoLogReason = fmt.Sprintf("task %s was %s, it has no log", d.Name, strings.ToLower(string(t.State)))
	case shown == nil:
		d.NoLogReason = "the task has not started yet"
		d.LogStream = taskURL(run.ID, t.Path) + "/log?offset=0"
	default:
		d.InParams = inputParams(shown.LogPath)
		d.LogAttempt = shown.Attempt
		text, off, note := readLog(shown.LogPath, maxLogPage)
		d.Log, d.LogOffset, d.LogNote = text, off, note
		if shown.FinishedAt.IsZero() && s.live(run) {
			d.LogStream = fmt.Sprintf("%s/log?attempt=%d&offset=%d", taskURL(run.ID, t.Path), shown.Attempt, off)
		}
	}
	s.render(w, "task", d.Name+" — run "+run.ID, "runs", d)
}

// openLog opens a log the history names; a link is never followed (a step
// could have replaced its log with one).
func openLog(path string) (*os.File, error) {
	if path == "" {
		return nil, fs.ErrNotExist
	}
	return safefile.OpenRegular(path)
}

// readLog reads the end of a log, at most max bytes, as valid UTF-8; it
// returns the text, the offset it read up to and a note when it left the
// start out.
func readLog(path string, max int64) (string, int64, string) {
	f, err := openLog(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", 0, "no log yet"
	}
	if err != nil {
		return "", 0, "cannot read the log: " + err.Error()
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return "", 0, "the log is not a regular file"
	}
	size, start, note := st.Size(), int64(0), ""
	if size > max {
		start = size - max
		note = fmt.Sprintf("the first %s of the log are left out (mlpipe logs prints all of it)", units.Bytes(start))
	}
	b := make([]byte, size-start)
	n, _ := f.ReadAt(b, start)
	b = completeRunes(b[:n])
	return strings.ToValidUTF8(string(b), "\uFFFD"), start + int64(len(b)), note
}

// completeRunes cuts an incomplete UTF-8 sequence off the end of b (the
// rest of it comes with the next read).
func completeRunes(b []byte) []byte {
	for i := 1; i <= 3 && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < 0x80 {
			return b
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			return b
		}
	}
	return b
}

// logStream sends what is appended to an attempt's log as server-sent
// events ("log": a JSON string) until the attempt or the run ends.
func (s *Server) logStream(w http.ResponseWriter, r *http.Request, run *contract.RunRecord, t *contract.TaskRecord) {
	ctx := r.Context()
	q := r.URL.Query()
	attempt, _ := strconv.Atoi(q.Get("attempt"))
	offset, _ := strconv.ParseInt(q.Get("offset"), 10, 64)
	offset = max(offset, 0)
	ev, ok := startSSE(w)
	if !ok {
		return
	}
	tick := time.NewTicker(s.o.Poll)
	defer tick.Stop()
	buf := make([]byte, 64<<10)
	for {
		ats, err := s.o.History.Attempts(ctx, run.ID, t.Path)
		if err != nil {
			_ = ev.send("error", err.Error())
			return
		}
		var a *contract.AttemptRecord
		for i, at := range ats {
			if at.Attempt == attempt || (attempt == 0 && i == len(ats)-1) {
				a = at
			}
		}
		cur, err := s.o.History.Run(ctx, run.ID)
		if err != nil {
			_ = ev.send("error", err.Error())
			return
		}
		finished := !s.live(cur) || (a != nil && !a.FinishedAt.IsZero())
		if a != nil {
			attempt = a.Attempt
			if f, err := openLog(a.LogPath); err == nil {
				for {
					n, _ := f.ReadAt(buf, offset)
					chunk := completeRunes(buf[:n])
					if len(chunk) == 0 {
						break
					}
					offset += int64(len(chunk))
					if err := ev.send("log", strings.ToValidUTF8(string(chunk), "\uFFFD")); err != nil {
						f.Close()
						return
					}
				}
				f.Close()
			}
		}
		if finished {
			_ = ev.send("end", map[string]any{"offset": offset})
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sparks draws an attempt's GPU samples, per GPU.
func sparks(samples []contract.GPUSample) []gpuSpark {
	by := map[string][]contract.GPUSample{}
	var order []string
	for _, s := range samples {
		if by[s.UUID] == nil {
			order = append(order, s.UUID)
		}
		by[s.UUID] = append(by[s.UUID], s)
	}
	var out []gpuSpark
	for _, u := range order {
		ss := by[u]
		slices.SortStableFunc(ss, func(a, b contract.GPUSample) int { return a.Time.Compare(b.Time) })
		var maxMem, maxPow, maxUtil float64
		for _, s := range ss {
			maxMem, maxPow, maxUtil = max(maxMem, float64(s.MemUsed)), max(maxPow, s.PowerWatts), max(maxUtil, s.Util)
		}
		series := func(f func(contract.GPUSample) float64, top float64) string {
			if top <= 0 {
				top = 1
			}
			var pts []string
			for i, s := range ss {
				x := 120.0
				if len(ss) > 1 {
					x = 120 * float64(i) / float64(len(ss)-1)
				}
				y := 24 - 22*max(0, f(s))/top
				pts = append(pts, strconv.FormatFloat(x, 'f', 1, 64)+","+strconv.FormatFloat(y, 'f', 1, 64))
			}
			return strings.Join(pts, " ")
		}
		out = append(out, gpuSpark{UUID: u, Samples: len(ss),
			Util:    series(func(s contract.GPUSample) float64 { return s.Util }, 100),
			Mem:     series(func(s contract.GPUSample) float64 { return float64(s.MemUsed) }, maxMem),
			Power:   series(func(s contract.GPUSample) float64 { return s.PowerWatts }, maxPow),
			UtilMax: fmt.Sprintf("%.0f%%", maxUtil), MemMax: units.Bytes(int64(maxMem)), PowMax: fmt.Sprintf("%.0f W", maxPow)})
	}
	return out
}

// inputParams reads the input parameters of a task from the executor input
// mlpipe wrote into its task directory (the directory of its attempt's
// log), when there is one: the history keeps input artifacts, not values.
// A link is never followed, and only the first MiB is read.
func inputParams(logPath string) []kv {
	if logPath == "" {
		return nil
	}
	f, err := safefile.OpenRegular(filepath.Join(filepath.Dir(logPath), "executor_input.json"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var ei struct {
		Inputs struct {
			ParameterValues map[string]any `json:"parameterValues"`
		} `json:"inputs"`
	}
	if err := json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&ei); err != nil {
		return nil
	}
	return sortedKV(ei.Inputs.ParameterValues)
}
