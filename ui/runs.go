package ui

import (
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mlpipe/mlpipe/contract"
	"github.com/mlpipe/mlpipe/internal/units"
)

// PageSize is how many runs the runs list shows per page.
const PageSize = 50

var funcs = template.FuncMap{
	"duration": fmtDuration,
	"time":     fmtTime,
	"bytes":    units.Bytes,
	"value":    fmtValue,
	"runURL":   func(id string) string { return "/runs/" + url.PathEscape(id) },
	"taskURL":  taskURL,
	"artURL":   func(uri string) string { return "/artifacts?uri=" + url.QueryEscape(uri) },
	"rawURL":   func(uri string) string { return "/artifacts/raw?uri=" + url.QueryEscape(uri) },
	"lower":    func(s contract.State) string { return strings.ToLower(string(s)) },
	"display":  contract.DisplayName,
	"add":      func(a, b int) int { return a + b },
	"f1":       func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
}

func taskURL(run, path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/runs/" + url.PathEscape(run) + "/tasks/" + strings.Join(parts, "/")
}

func fmtDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// fmtValue is a parameter value as text: strings as they are, the rest as
// JSON.
func fmtValue(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// runRow is one run of the runs list (also its JSON for the live update).
type runRow struct {
	ID         string `json:"run_id"`
	URL        string `json:"url"`
	Pipeline   string `json:"pipeline"`
	State      string `json:"state"`
	Started    string `json:"started"`
	Duration   string `json:"duration"`
	Parameters string `json:"parameters"`
	Executor   string `json:"executor"`
}

func (s *Server) row(r *contract.RunRecord) runRow {
	var ps []string
	for _, k := range slices.Sorted(maps.Keys(r.Params)) {
		v := fmtValue(r.Params[k])
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		ps = append(ps, k+"="+v)
	}
	return runRow{ID: r.ID, URL: "/runs/" + url.PathEscape(r.ID), Pipeline: r.Pipeline, State: string(s.state(r)), Started: fmtTime(r.StartedAt),
		Duration: s.runDuration(r), Parameters: strings.Join(ps, " "), Executor: r.Executor}
}

func (s *Server) runDuration(r *contract.RunRecord) string {
	if r.FinishedAt.IsZero() {
		if s.live(r) && !r.StartedAt.IsZero() {
			return fmtDuration(time.Since(r.StartedAt)) + "+"
		}
		return "-"
	}
	return fmtDuration(r.FinishedAt.Sub(r.StartedAt))
}

type runsList struct {
	Rows             []runRow `json:"runs"`
	Total            int      `json:"total"`
	Page             int      `json:"page"`
	Pages            int      `json:"pages"`
	Pipeline         string   `json:"-"`
	State            string   `json:"-"`
	Pipelines        []string `json:"-"`
	States           []string `json:"-"`
	Prev, Next, Live string   `json:"-"`
}

func (s *Server) listRuns(r *http.Request) (*runsList, error) {
	q := r.URL.Query()
	l := &runsList{Pipeline: q.Get("pipeline"), State: q.Get("state"), Page: 1}
	if p, err := strconv.Atoi(q.Get("page")); err == nil && p > 1 {
		l.Page = p
	}
	runs, total, err := s.o.History.QueryRuns(r.Context(), l.Pipeline, l.State, PageSize, (l.Page-1)*PageSize)
	if err != nil {
		return nil, err
	}
	l.Total, l.Pages = total, max(1, (total+PageSize-1)/PageSize)
	l.Rows = []runRow{}
	for _, run := range runs {
		l.Rows = append(l.Rows, s.row(run))
	}
	link := func(page int) string {
		v := url.Values{}
		if l.Pipeline != "" {
			v.Set("pipeline", l.Pipeline)
		}
		if l.State != "" {
			v.Set("state", l.State)
		}
		if page > 0 {
			v.Set("page", strconv.Itoa(page))
		}
		if len(v) == 0 {
			return ""
		}
		return "?" + v.Encode()
	}
	if l.Page > 1 {
		l.Prev = link(l.Page - 1)
	}
	if l.Page < l.Pages {
		l.Next = link(l.Page + 1)
	}
	if l.Page == 1 {
		l.Live = "/api/runs" + link(0)
	}
	return l, nil
}

func (s *Server) runsPage(w http.ResponseWriter, r *http.Request) {
	l, err := s.listRuns(r)
	if err != nil {
		s.fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	if l.Pipelines, err = s.o.History.Pipelines(r.Context()); err != nil {
		s.fail(w, http.StatusInternalServerError, err.Error())
		return
	}
	l.States = []string{"RUNNING", "SUCCEEDED", "FAILED", "CANCELED", "PENDING"}
	s.render(w, "runs", "Runs", "runs", l)
}

// runsAPI is a page of the runs list as JSON (the list's live update).
func (s *Server) runsAPI(w http.ResponseWriter, r *http.Request) {
	l, err := s.listRuns(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, l)
}

// compareData is the compare page: rows of values, one column per run.
type compareData struct {
	Runs      []runRow
	Warning   string
	Params    []compareRow
	Metrics   []compareRow
	Durations []compareRow
	BenchURL  string
}

type compareRow struct {
	Name   string
	Values []string
	Differ bool
}

func (s *Server) comparePage(w http.ResponseWriter, r *http.Request) {
	ids := runIDs(r)
	if len(ids) < 2 || len(ids) > 20 {
		s.fail(w, http.StatusBadRequest, "compare needs 2 to 20 run ids: /compare?runs=a,b")
		return
	}
	ctx := r.Context()
	d := &compareData{BenchURL: benchURL(ids)}
	params := map[string][]string{}
	metrics := map[string][]string{}
	durations := map[string][]string{}
	put := func(m map[string][]string, k string, i int, v string) {
		if m[k] == nil {
			m[k] = make([]string, len(ids))
		}
		m[k][i] = v
	}
	for i, id := range ids {
		run, err := s.o.History.Run(ctx, id)
		if err != nil {
			s.notFoundOr(w, err)
			return
		}
		if i > 0 && run.Pipeline != d.Runs[0].Pipeline {
			d.Warning = fmt.Sprintf("these runs are of different pipelines (%s, %s): only what they share lines up", d.Runs[0].Pipeline, run.Pipeline)
		}
		d.Runs = append(d.Runs, s.row(run))
		for k, v := range run.Params {
			put(params, k, i, fmtValue(v))
		}
		for k, v := range run.Outputs {
			put(metrics, "output "+k, i, fmtValue(v))
		}
		tasks, err := s.o.History.Tasks(ctx, id)
		if err != nil {
			s.fail(w, http.StatusInternalServerError, err.Error())
			return
		}
		for _, t := range tasks {
			if t.Kind == "dag" {
				continue
			}
			name := contract.DisplayName(t.Path)
			dur := string(t.State)
			if !t.FinishedAt.IsZero() && !t.StartedAt.IsZero() && t.State != contract.Cached {
				dur = fmtDuration(t.FinishedAt.Sub(t.StartedAt))
			}
			put(durations, name, i, dur)
			for out, arts := range t.Outputs.Artifacts {
				for _, a := range arts {
					if a.Type != "system.Metrics" {
						continue
					}
					for k, v := range a.Metadata {
						if k == "display_name" {
							continue
						}
						put(metrics, name+"."+out+"."+k, i, fmtValue(v))
					}
				}
			}
		}
	}
	d.Params, d.Metrics, d.Durations = compareRows(params), compareRows(metrics), compareRows(durations)
	s.render(w, "compare", "Compare runs", "", d)
}

func compareRows(m map[string][]string) []compareRow {
	var out []compareRow
	for _, k := range slices.Sorted(maps.Keys(m)) {
		row := compareRow{Name: k, Values: m[k]}
		for _, v := range row.Values {
			if v != row.Values[0] {
				row.Differ = true
			}
		}
		out = append(out, row)
	}
	return out
}
