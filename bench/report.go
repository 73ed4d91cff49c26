package bench

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/mlpipe/mlpipe/contract"
)

var phaseColor = map[string]string{
	"queue": "#c8c8c8", "image": "#9467bd", "stage_in": "#17becf", "create": "#ff7f0e", "start": "#bcbd22",
	"execute": "#1f77b4", "collect": "#2ca02c", "teardown": "#8c564b",
}

func colorOf(phase string) string {
	if c, ok := phaseColor[phase]; ok {
		return c
	}
	return "#7f7f7f"
}

// TimelineSVG draws a run: one lane per task with its attempts' phases,
// then one lane per GPU showing which task held it. Self-contained SVG.
func TimelineSVG(run *contract.RunRecord, tasks []*contract.TaskRecord, attempts []*contract.AttemptRecord) []byte {
	spans, t0, t1 := timelineSpans(run, tasks, attempts)
	sort.SliceStable(spans, func(i, j int) bool { return spans[i].start.Before(spans[j].start) })
	gpuLanes := map[string][]span{}
	var gpuOrder []string
	for _, s := range spans {
		for _, g := range s.gpus {
			if _, ok := gpuLanes[g]; !ok {
				gpuOrder = append(gpuOrder, g)
			}
			gpuLanes[g] = append(gpuLanes[g], s)
		}
	}
	total := t1.Sub(t0)
	if total <= 0 {
		total = time.Millisecond
	}
	const left, width, lane, top = 180, 900, 22, 40
	rows := len(spans) + len(gpuOrder)
	if len(gpuOrder) > 0 {
		rows++
	}
	height := top + rows*lane + 60
	x := func(t time.Time) float64 { return left + float64(width)*float64(t.Sub(t0))/float64(total) }
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`, left+width+30, height)
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="14" font-weight="bold">%s — run %s (%s)</text>`, html.EscapeString(run.Pipeline), html.EscapeString(run.ID), total.Round(time.Millisecond))
	// Time axis with about 10 ticks.
	step := niceStep(total / 10)
	for t := time.Duration(0); t <= total; t += step {
		xx := left + float64(width)*float64(t)/float64(total)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>`, xx, top-5, xx, top+rows*lane)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#666">%s</text>`, xx, top+rows*lane+15, t)
	}
	row := 0
	for _, s := range spans {
		y := top + row*lane
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, left-6, y+15, html.EscapeString(clipName(s.name)))
		if s.notRun != "" {
			// A lane for a task that never ran: a grey mark where it was
			// decided, the state beside it, the reason on hover.
			fmt.Fprintf(&b, `<g><title>%s %s: %s</title><rect x="%.1f" y="%d" width="3" height="%d" fill="#bbb"/><text x="%.1f" y="%d" fill="#888" font-style="italic">%s</text></g>`,
				html.EscapeString(s.name), s.notRun, html.EscapeString(s.reason), x(s.start), y+3, lane-6, x(s.start)+6, y+15, strings.ToLower(string(s.notRun)))
			row++
			continue
		}
		if len(s.phases) == 0 {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s %s</title></rect>`, x(s.start), y+3, math.Max(1, x(s.end)-x(s.start)), lane-6, colorOf("execute"), html.EscapeString(s.name), s.end.Sub(s.start))
		}
		for _, p := range s.phases {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s %s: %s</title></rect>`,
				x(p.Start), y+3, math.Max(1, x(p.End)-x(p.Start)), lane-6, colorOf(p.Name), html.EscapeString(s.name), p.Name, p.End.Sub(p.Start).Round(time.Microsecond))
		}
		if s.failed {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="none" stroke="#d62728" stroke-width="2"><title>failed</title></rect>`, x(s.start), y+2, math.Max(2, x(s.end)-x(s.start)), lane-4)
		}
		row++
	}
	if len(gpuOrder) > 0 {
		fmt.Fprintf(&b, `<text x="10" y="%d" font-weight="bold">GPUs</text>`, top+row*lane+15)
		row++
		for _, g := range gpuOrder {
			y := top + row*lane
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, left-6, y+15, html.EscapeString(clipName(g)))
			for _, s := range gpuLanes[g] {
				fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#76b900" stroke="#fff"><title>%s on %s</title></rect>`, x(s.start), y+3, math.Max(1, x(s.end)-x(s.start)), lane-6, html.EscapeString(s.name), html.EscapeString(g))
				if x(s.end)-x(s.start) > 40 {
					fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#fff">%s</text>`, x(s.start)+3, y+15, html.EscapeString(clipName(s.name)))
				}
			}
			row++
		}
	}
	// Legend.
	lx := left
	ly := top + rows*lane + 35
	for _, p := range PhaseOrder[1:] {
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`, lx, ly-10, colorOf(p), lx+16, ly, p)
		lx += 95
	}
	b.WriteString(`</svg>`)
	return b.Bytes()
}

func clipName(s string) string {
	if len(s) > 26 {
		return s[:12] + "…" + s[len(s)-12:]
	}
	return s
}

func niceStep(d time.Duration) time.Duration {
	for _, s := range []time.Duration{time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond,
		50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second,
		5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour} {
		if s >= d {
			return s
		}
	}
	return time.Hour
}

// distributionSVG draws each task's samples of one phase as dots on a
// shared axis, with the median and p95 marked.
func distributionSVG(r *Result) []byte {
	var maxV float64
	for _, t := range r.Tasks {
		p := mainPhase(t)
		for _, v := range t.Phases[p].Samples {
			maxV = math.Max(maxV, v)
		}
	}
	if maxV <= 0 {
		maxV = 1
	}
	const left, width, lane, top = 180, 700, 26, 20
	height := top + len(r.Tasks)*lane + 40
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`, left+width+120, height)
	x := func(v float64) float64 { return left + width*v/maxV }
	for i, t := range r.Tasks {
		p := mainPhase(t)
		s := t.Phases[p]
		y := top + i*lane
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s (%s)</text>`, left-6, y+15, html.EscapeString(clipName(t.Name)), p)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#eee"/>`, left, y+11, left+width, y+11)
		for j, v := range s.Samples {
			jitter := float64((j*7)%9-4) * 1.2
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="#1f77b4" fill-opacity="0.6"><title>%s</title></circle>`, x(v), float64(y+11)+jitter, fmtMS(v))
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#d62728" stroke-width="2"><title>median %s</title></line>`, x(s.Median), y+2, x(s.Median), y+20, fmtMS(s.Median))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ff7f0e" stroke-dasharray="3,2"><title>p95 %s</title></line>`, x(s.P95), y+2, x(s.P95), y+20, fmtMS(s.P95))
		fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#444">%s ± %s</text>`, left+width+8, y+15, fmtMS(s.Median), fmtMS(s.StdDev))
	}
	for i := 0; i <= 5; i++ {
		v := maxV * float64(i) / 5
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#666">%s</text>`, x(v), top+len(r.Tasks)*lane+15, fmtMS(v))
	}
	b.WriteString(`</svg>`)
	return b.Bytes()
}

func mainPhase(t TaskResult) string {
	if _, ok := t.Phases["execute"]; ok {
		return "execute"
	}
	return "total"
}

// WriteHTML writes a self-contained report: the statistics, the
// distribution of each task's execution time and the timeline of a run.
func WriteHTML(w io.Writer, r *Result, timeline []byte) error {
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mlpipe bench: %s</title>
<style>body{font-family:sans-serif;margin:2em;color:#222} pre{background:#f6f6f6;padding:1em;overflow:auto} h2{margin-top:2em}</style>
</head><body>
<h1>Benchmark of %s</h1>
<p>%s · %d run(s) after %d warm-up · %s executor · %s/%s, %d CPUs%s</p>
<h2>Statistics (milliseconds)</h2>
<pre>%s</pre>
<h2>Execution time of each task</h2>
<p>Dots are runs; the red line is the median, the dashed line the 95th percentile.</p>
%s
<h2>Timeline of the last run</h2>
<p>Each lane is a task; colours are phases; green lanes below show which GPU each step held.</p>
%s
</body></html>
`, html.EscapeString(r.Pipeline), html.EscapeString(r.Pipeline), r.Date.Format(time.RFC1123), r.Repeat, r.Warmup, html.EscapeString(r.Executor),
		r.Machine.OS, r.Machine.Arch, r.Machine.CPUs, gpuNote(r), html.EscapeString(table.String()), distributionSVG(r), timeline)
	return err
}

func gpuNote(r *Result) string {
	if len(r.Machine.GPUs) == 0 {
		return ""
	}
	return ", GPUs: " + html.EscapeString(fmt.Sprint(r.Machine.GPUs))
}

// span is one attempt on the timeline.
type span struct {
	name       string
	start, end time.Time
	phases     []contract.Phase
	gpus       []string
	failed     bool
	notRun     contract.State // SKIPPED or CANCELED for a task that never ran
	reason     string
}

// timelineSpans lays out the attempts of a run: each attempt's span (its
// phases included), and the time the timeline covers.
func timelineSpans(run *contract.RunRecord, tasks []*contract.TaskRecord, attempts []*contract.AttemptRecord) (spans []span, t0, t1 time.Time) {
	names := map[string]string{}
	states := map[string]contract.State{}
	for _, t := range tasks {
		names[t.Path] = t.Name
		states[t.Path] = t.State
	}
	last := map[string]int{}
	for _, a := range attempts {
		last[a.TaskPath] = max(last[a.TaskPath], a.Attempt)
	}
	t0, t1 = run.StartedAt, run.FinishedAt
	for _, a := range attempts {
		s := span{name: names[a.TaskPath], start: a.StartedAt, end: a.FinishedAt, phases: a.Phases, gpus: a.GPUs}
		if s.end.IsZero() { // recorded as it started, never finished (a killed run) or still running
			s.end = s.start
			if t1.After(s.start) {
				s.end = t1
			}
		}
		if s.name == "" {
			s.name = contract.DisplayName(a.TaskPath)
		}
		if a.Attempt < last[a.TaskPath] || states[a.TaskPath] == contract.Failed {
			s.failed = a.Error != ""
		}
		if a.Attempt > 1 {
			s.name = fmt.Sprintf("%s #%d", s.name, a.Attempt)
		}
		for _, p := range a.Phases {
			if p.Start.Before(s.start) {
				s.start = p.Start
			}
			if p.End.After(s.end) {
				s.end = p.End
			}
		}
		if t0.IsZero() || s.start.Before(t0) {
			t0 = s.start
		}
		if s.end.After(t1) {
			t1 = s.end
		}
		spans = append(spans, s)
	}
	// Steps that never ran get a lane too, at the time they were decided.
	for _, t := range tasks {
		if t.Kind == "dag" || last[t.Path] > 0 || (t.State != contract.Skipped && t.State != contract.Canceled) {
			continue
		}
		at := t.FinishedAt
		if at.IsZero() || at.Before(t0) {
			at = t0
		}
		if t1.Before(at) {
			t1 = at
		}
		spans = append(spans, span{name: t.Name, start: at, end: at, notRun: t.State, reason: t.Error})
	}
	return spans, t0, t1
}
