package ui

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mlpipe/mlpipe/bench"
	"github.com/mlpipe/mlpipe/contract"
)

// benchCSP is the policy of the benchmark report: mlpipe bench's
// self-contained HTML (inline styles, inline SVG, no script).
const benchCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

// benchPage is `mlpipe bench --report` of the runs given (?runs=a,b,...):
// the statistics of every task and phase over those runs, their
// timeline, drawn from the history.
func (s *Server) benchPage(w http.ResponseWriter, r *http.Request) {
	ids := runIDs(r)
	if len(ids) < 1 || len(ids) > 200 {
		s.fail(w, http.StatusBadRequest, "a benchmark report needs 1 to 200 run ids: /bench?runs=a,b")
		return
	}
	ctx := r.Context()
	data, last, err := bench.Gather(ctx, s.o.History, ids, "")
	if err != nil {
		s.notFoundOr(w, err)
		return
	}
	res := &bench.Result{Pipeline: last.Pipeline, Date: last.StartedAt.UTC(), Machine: bench.ThisMachine(nil), Executor: last.Executor,
		Repeat: len(ids), Runs: ids, Tasks: bench.Collect(data), NotRun: bench.CollectNotRun(data)}
	_, tasks, attempts, ok := s.runRecords(w, r, last.ID)
	if !ok {
		return
	}
	w.Header().Set("Content-Security-Policy", benchCSP)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = bench.WriteHTML(w, res, bench.TimelineSVG(last, tasks, attempts))
}

// benchSession returns the runs of the `mlpipe bench` that made run
// (Source "bench ..."): the runs of the same pipeline and source that ran
// one after another, each starting within a minute of the end of the one
// before; nil for a run that no bench made.
func (s *Server) benchSession(ctx context.Context, run *contract.RunRecord) []string {
	if !strings.HasPrefix(run.Source, "bench ") {
		return nil
	}
	recent, _, err := s.o.History.QueryRuns(ctx, run.Pipeline, "", 1000, 0)
	if err != nil {
		return nil
	}
	var same []*contract.RunRecord
	for _, r := range recent {
		if r.Source == run.Source && !r.FinishedAt.IsZero() {
			same = append(same, r)
		}
	}
	slices.SortFunc(same, func(a, b *contract.RunRecord) int { return a.StartedAt.Compare(b.StartedAt) })
	var session []string
	for i, r := range same {
		if i > 0 && r.StartedAt.Sub(same[i-1].FinishedAt) > time.Minute {
			if slices.Contains(session, run.ID) {
				break
			}
			session = nil
		}
		session = append(session, r.ID)
	}
	if !slices.Contains(session, run.ID) {
		return nil
	}
	return session
}

// benchURL is the report of runs.
func benchURL(ids []string) string {
	return "/bench?runs=" + url.QueryEscape(strings.Join(ids, ","))
}
