package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/mlpipe/mlpipe/internal/termsafe"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/mlpipe/mlpipe/runner"
	"github.com/mlpipe/mlpipe/storage"
)

// progress shows a run as it goes.
type progress interface {
	Event(e runner.Event)
	// Output is where tasks' output lines go.
	Output() io.Writer
	Close()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

func newProgress(format string, stdout, stderr io.Writer, total int) progress {
	switch {
	case format == "json":
		return &jsonProgress{enc: json.NewEncoder(stdout), stderr: stderr}
	case isTerminal(stdout) && os.Getenv("TERM") != "dumb":
		return newLiveProgress(stdout, total)
	}
	return &plainProgress{w: stdout}
}

// jsonProgress prints one JSON event per line; task output goes to stderr.
type jsonProgress struct {
	mu     sync.Mutex
	enc    *json.Encoder
	stderr io.Writer
	runID  string
}

func (p *jsonProgress) Event(e runner.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.RunID != "" {
		p.runID = e.RunID
	}
	_ = p.enc.Encode(e)
}

// storeWaitEvent is the JSON line of a wait for the object store: a line
// of its own kind ("event": "store_wait"), between the task events.
type storeWaitEvent struct {
	Time     time.Time `json:"time"`
	RunID    string    `json:"run_id,omitempty"`
	Event    string    `json:"event"`
	Op       string    `json:"op"`
	URI      string    `json:"uri"`
	Endpoint string    `json:"endpoint,omitempty"`
	Retry    int       `json:"retry"`
	WaitedMS int64     `json:"waited_ms"`
	Reason   string    `json:"reason,omitempty"`
	Message  string    `json:"message"`
}

// Transfer implements transferView: waits for the store become events.
func (p *jsonProgress) Transfer(t storage.Progress) {
	if !t.Waiting {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.enc.Encode(storeWaitEvent{Time: time.Now(), RunID: p.runID, Event: "store_wait", Op: t.Op, URI: t.URI,
		Endpoint: t.Endpoint, Retry: t.Retry, WaitedMS: t.Waited.Milliseconds(), Reason: t.Reason, Message: t.WaitMessage()})
}
func (p *jsonProgress) Output() io.Writer { return p.stderr }
func (p *jsonProgress) Close()            {}

// plainProgress prints a line per state change, for logs and pipes.
type plainProgress struct {
	mu    sync.Mutex
	w     io.Writer
	loops loopQuiet
}

func (p *plainProgress) Event(e runner.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.loops.filter(e, eventLine(e)) {
		fmt.Fprintln(p.w, l)
	}
}
func (p *plainProgress) Output() io.Writer { return p.w }
func (p *plainProgress) Close()            {}

// Transfer prints the store's waits for a server that does not answer
// (transfers themselves are not shown).
func (p *plainProgress) Transfer(t storage.Progress) {
	if !t.Waiting {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.w, waitLine(t))
}

// waitLine is "15:04:05 waiting for minio://bucket/key (retry 3, 20 s)".
func waitLine(t storage.Progress) string {
	return time.Now().Format("15:04:05") + " " + termsafe.Escape(t.WaitMessage())
}

func eventLine(e runner.Event) string {
	var b strings.Builder
	b.WriteString(e.Time.Format("15:04:05"))
	b.WriteString(" ")
	if e.Task == "" {
		fmt.Fprintf(&b, "run %s %s", e.RunID, e.State)
	} else {
		fmt.Fprintf(&b, "%s %s", e.Task, e.State)
	}
	if e.Attempt > 1 {
		fmt.Fprintf(&b, " (attempt %d)", e.Attempt)
	}
	if e.DurMS > 0 && e.State.Final() {
		fmt.Fprintf(&b, " in %s", fmtDuration(time.Duration(e.DurMS)*time.Millisecond))
	}
	if len(e.GPUs) > 0 && e.State == runner.Running {
		fmt.Fprintf(&b, " on GPU %s", strings.Join(e.GPUs, ","))
	}
	if e.Message != "" && e.State != runner.Running {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if len(e.Outputs) > 0 && e.Task != "" {
		keys := make([]string, 0, len(e.Outputs))
		for k := range e.Outputs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			s := runner.FormatValue(e.Outputs[k])
			if len(s) > 60 {
				s = s[:57] + "..."
			}
			parts = append(parts, k+"="+s)
		}
		fmt.Fprintf(&b, " [%s]", strings.Join(parts, " "))
	}
	// Messages and values come from steps and IR files.
	return termsafe.Escape(b.String())
}

func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

// transferView is a progress view that shows large artifact transfers.
type transferView interface {
	Transfer(p storage.Progress)
}

// liveProgress is the terminal view: a line per running task with its
// elapsed time, a byte bar per large artifact transfer, and a summary line
// with the counts.
type liveProgress struct {
	mu        sync.Mutex
	p         *mpb.Progress
	summary   *mpb.Bar
	bars      map[string]*mpb.Bar
	transfers map[string]*mpb.Bar // by op and URI
	counts    map[runner.State]int
	total     int
	loops     loopQuiet
}

// Transfer shows a transfer of the store as a byte bar with its rate; the
// bar goes when the transfer is complete.
func (lp *liveProgress) Transfer(t storage.Progress) {
	if t.Waiting { // the store waits for a server that does not answer
		fmt.Fprintln(lp.p, waitLine(t))
		return
	}
	lp.mu.Lock()
	defer lp.mu.Unlock()
	key := t.Op + " " + t.URI
	b, ok := lp.transfers[key]
	if !ok {
		if t.Done >= t.Total {
			return // finished before it was shown
		}
		verb := "upload"
		if t.Op == "get" {
			verb = "download"
		}
		b = lp.p.New(t.Total, mpb.BarStyle(), mpb.BarRemoveOnComplete(),
			mpb.PrependDecorators(decor.Name(verb+" "+shortURI(t.URI), decor.WC{C: decor.DindentRight | decor.DextraSpace})),
			mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f"), decor.Name(" "), decor.AverageSpeed(decor.SizeB1024(0), "% .1f")))
		lp.transfers[key] = b
	}
	b.SetCurrent(t.Done)
	if t.Done >= t.Total {
		b.SetTotal(t.Total, true)
		delete(lp.transfers, key)
	}
}

// shortURI keeps the end of a long URI, the part that names the artifact.
func shortURI(u string) string {
	u = termsafe.Escape(u)
	const max = 48
	if len(u) <= max {
		return u
	}
	return "..." + u[len(u)-max+3:]
}

func newLiveProgress(w io.Writer, total int, opts ...mpb.ContainerOption) *liveProgress {
	opts = append([]mpb.ContainerOption{mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(200 * time.Millisecond)}, opts...)
	lp := &liveProgress{p: mpb.New(opts...),
		bars: map[string]*mpb.Bar{}, transfers: map[string]*mpb.Bar{}, counts: map[runner.State]int{}, total: total}
	lp.summary = lp.p.New(0, mpb.NopStyle(), mpb.BarPriority(1<<30),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return lp.summaryText() })))
	return lp
}

func (lp *liveProgress) summaryText() string {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	done := lp.counts[runner.Succeeded]
	pending := lp.total - done - lp.counts[runner.Cached] - lp.counts[runner.Failed] - lp.counts[runner.Skipped] - lp.counts[runner.Canceled] - len(lp.bars)
	if pending < 0 {
		pending = 0
	}
	return fmt.Sprintf("running %d | done %d | cached %d | failed %d | skipped %d | pending %d",
		len(lp.bars), done, lp.counts[runner.Cached], lp.counts[runner.Failed], lp.counts[runner.Skipped], pending)
}

func (lp *liveProgress) Event(e runner.Event) {
	if e.Task == "" {
		if e.State.Final() {
			fmt.Fprintln(lp.p, eventLine(e))
		}
		return
	}
	lp.mu.Lock()
	defer lp.mu.Unlock()
	switch e.State {
	case runner.Running:
		if _, ok := lp.bars[e.Path]; ok {
			return
		}
		label := termsafe.Escape(e.Task)
		if len(e.GPUs) > 0 {
			label += " [GPU " + strings.Join(shortUUIDs(e.GPUs), ",") + "]"
		}
		b := lp.p.New(1, mpb.SpinnerStyle(), mpb.BarRemoveOnComplete(),
			mpb.PrependDecorators(decor.Name(label, decor.WC{C: decor.DindentRight | decor.DextraSpace})),
			mpb.AppendDecorators(decor.Elapsed(decor.ET_STYLE_GO)))
		lp.bars[e.Path] = b
	case runner.Pending:
		if e.Message != "" {
			for _, l := range lp.loops.filter(e, eventLine(e)) {
				fmt.Fprintln(lp.p, l)
			}
		}
	default:
		if b, ok := lp.bars[e.Path]; ok {
			b.SetTotal(1, true)
			delete(lp.bars, e.Path)
		}
		if e.State.Final() {
			if e.Kind != "dag" { // the counts are of steps, as the plan's total
				lp.counts[e.State]++
			}
			for _, l := range lp.loops.filter(e, eventLine(e)) {
				fmt.Fprintln(lp.p, l)
			}
		}
	}
}

func shortUUIDs(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		if len(id) > 12 {
			id = id[:12]
		}
		out[i] = id
	}
	return out
}

func (lp *liveProgress) Output() io.Writer { return lp.p }

func (lp *liveProgress) Close() {
	lp.mu.Lock()
	for k, b := range lp.bars {
		b.Abort(true)
		delete(lp.bars, k)
	}
	for k, b := range lp.transfers { // failed or cancelled transfers
		b.Abort(true)
		delete(lp.transfers, k)
	}
	lp.mu.Unlock()
	lp.summary.SetTotal(0, true)
	lp.p.Wait()
}
