package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mlpipe/mlpipe/internal/termsafe"
	"github.com/mlpipe/mlpipe/metadata"
	"github.com/mlpipe/mlpipe/runner"
	"github.com/mlpipe/mlpipe/storage"
)

func newRunsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List, show and remove runs from the local run history",
	}
	var lsOut string
	var limit int
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List runs, newest first",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runsLs(cmd.Context(), a, lsOut, limit)
		},
	}
	ls.Flags().StringVar(&lsOut, "output", "text", "text or json")
	ls.Flags().IntVar(&limit, "limit", 50, "show at most N runs (0: all)")
	var showOut, timeline string
	show := &cobra.Command{
		Use:   "show RUN",
		Short: "Show a run: its tasks, states, attempts, durations, GPUs and outputs",
		Long: `Show a run. RUN is a run id, a unique prefix of one, or "latest".
Every step of the pipeline is listed, also those that did not run (SKIPPED or
CANCELED), with the reason under "Not run:" (the "reason" field in JSON).`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return runsShow(cmd.Context(), a, argv[0], showOut, timeline)
		},
	}
	show.Flags().StringVar(&showOut, "output", "text", "text or json")
	show.Flags().StringVar(&timeline, "timeline", "", "also draw the run's timeline into FILE.svg")
	var force bool
	rm := &cobra.Command{
		Use:   "rm RUN...",
		Short: "Remove runs: their history, task directories and artifacts",
		Args:  args(1, -1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return runsRm(cmd.Context(), a, argv, force)
		},
	}
	rm.Flags().BoolVar(&force, "force", false, "remove a run even if it looks like it is still running, or other runs use its artifacts")
	cmd.AddCommand(ls, show, rm)
	return cmd
}

func runsLs(ctx context.Context, a *app, output string, limit int) error {
	if output != "text" && output != "json" {
		return usagef("--output must be text or json, not %q", output)
	}
	h, err := a.openHistory()
	if err != nil {
		return err
	}
	defer h.Close()
	runs, err := h.ListRuns(ctx, limit)
	if err != nil {
		return err
	}
	if output == "json" {
		out := []map[string]any{}
		for _, r := range runs {
			out = append(out, runSummaryJSON(r))
		}
		return writeJSON(a, out)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tPIPELINE\tSTATE\tSTARTED\tDURATION")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Pipeline, displayState(r), r.StartedAt.Local().Format("2006-01-02 15:04:05"), runDuration(r))
	}
	return tw.Flush()
}

// displayState marks runs whose process died without finishing them.
func displayState(r *runner.RunRecord) runner.State {
	if r.State == runner.Running && !runAlive(r) {
		return "INTERRUPTED"
	}
	return r.State
}

func runAlive(r *runner.RunRecord) bool {
	host, _ := os.Hostname()
	if r.Host != "" && r.Host != host {
		return true
	}
	if r.PID <= 0 {
		return false
	}
	p, err := os.FindProcess(r.PID)
	if err != nil {
		return false
	}
	return p.Signal(syscallZero) == nil
}

func runDuration(r *runner.RunRecord) string {
	if r.FinishedAt.IsZero() {
		if r.State == runner.Running && runAlive(r) {
			return fmtDuration(time.Since(r.StartedAt)) + "+"
		}
		return "-"
	}
	return fmtDuration(r.FinishedAt.Sub(r.StartedAt))
}

func runSummaryJSON(r *runner.RunRecord) map[string]any {
	m := map[string]any{
		"run_id":     r.ID,
		"pipeline":   r.Pipeline,
		"state":      displayState(r),
		"started_at": r.StartedAt.UTC().Format(time.RFC3339Nano),
	}
	if !r.FinishedAt.IsZero() {
		m["finished_at"] = r.FinishedAt.UTC().Format(time.RFC3339Nano)
	} else {
		m["finished_at"] = nil
	}
	return m
}

// taskJSON is one task of runs show --output json.
type taskJSON struct {
	Name       string           `json:"name"`
	Path       string           `json:"path"`
	State      runner.State     `json:"state"`
	Attempts   int              `json:"attempts"`
	DurationMS int64            `json:"duration_ms"`
	GPUs       []string         `json:"gpus"`
	CachedFrom string           `json:"cached_from,omitempty"`
	Error      string           `json:"error,omitempty"`
	Reason     string           `json:"reason,omitempty"` // why it was skipped, cancelled or failed
	Outputs    taskOutputsJSON  `json:"outputs"`
	Phases     map[string]int64 `json:"phases_ms,omitempty"`
	GPUUsage   map[string]any   `json:"gpu_usage,omitempty"`
	extra      []*runner.AttemptRecord
}

type taskOutputsJSON struct {
	Parameters map[string]any            `json:"parameters"`
	Artifacts  map[string][]artifactJSON `json:"artifacts"`
}

type artifactJSON struct {
	URI      string         `json:"uri"`
	Digest   string         `json:"digest"`
	Size     int64          `json:"size"`
	Metadata map[string]any `json:"metadata"`
}

func runsShow(ctx context.Context, a *app, ref, output, timeline string) error {
	if output != "text" && output != "json" {
		return usagef("--output must be text or json, not %q", output)
	}
	h, err := a.openHistory()
	if err != nil {
		return err
	}
	defer h.Close()
	r, err := h.ResolveRun(ctx, ref)
	if err != nil {
		return usageError{err}
	}
	tasks, err := h.Tasks(ctx, r.ID)
	if err != nil {
		return err
	}
	attempts, err := h.Attempts(ctx, r.ID, "")
	if err != nil {
		return err
	}
	shown := shownTasks(tasks, attempts)
	if timeline != "" {
		if err := writeTimeline(timeline, r, tasks, attempts); err != nil {
			return err
		}
		fmt.Fprintf(a.stderr, "timeline written to %s\n", timeline)
	}
	if output == "json" {
		return writeJSON(a, runJSON(r, shown))
	}
	return writeRunText(a.stdout, r, shown)
}

func gpuUsage(samples []runner.GPUSample) map[string]any {
	if len(samples) == 0 {
		return nil
	}
	var sum, maxU, maxMem, power float64
	n := 0
	for _, s := range samples {
		if s.Util >= 0 {
			sum += s.Util
			maxU = max(maxU, s.Util)
			n++
		}
		maxMem = max(maxMem, float64(s.MemUsed))
		power += s.PowerWatts
	}
	out := map[string]any{"samples": len(samples), "mem_peak_bytes": int64(maxMem), "power_mean_w": power / float64(len(samples))}
	if n > 0 {
		out["util_mean"] = sum / float64(n)
		out["util_max"] = maxU
	}
	var energy float64
	for _, s := range samples {
		energy = max(energy, s.EnergyJ)
	}
	if energy > 0 {
		out["energy_j"] = energy
	}
	return out
}

func runsRm(ctx context.Context, a *app, refs []string, force bool) error {
	h, err := a.openHistory()
	if err != nil {
		return err
	}
	defer h.Close()
	for _, ref := range refs {
		r, err := h.ResolveRun(ctx, ref)
		if err != nil {
			return usageError{err}
		}
		if r.State == runner.Running && runAlive(r) && !force {
			return usagef("run %s is still running (pid %d); stop it first or use --force", r.ID, r.PID)
		}
		if !force {
			deps, err := h.RunDependents(ctx, r.ID, r.PipelineRoot)
			if err != nil {
				return err
			}
			if len(deps) > 0 {
				return usagef("run %s: its artifacts are used by run(s) %s (cached tasks or inputs); remove those first, or use --force to leave them pointing at nothing", r.ID, strings.Join(deps, ", "))
			}
		}
		if r.State == runner.Running {
			runner.KillOrphans(r.ID)
		}
		if err := a.deleteRunArtifacts(ctx, r); err != nil {
			return fmt.Errorf("remove artifacts of run %s: %w", r.ID, err)
		}
		if err := os.RemoveAll(a.layout().Run(r.ID)); err != nil {
			return err
		}
		if err := h.DeleteRun(ctx, r.ID); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "removed run %s\n", r.ID)
	}
	return nil
}

// deleteRunArtifacts removes the run's artifacts from the store they were
// written to.
func (a *app) deleteRunArtifacts(ctx context.Context, r *runner.RunRecord) error {
	if r.PipelineRoot == "" {
		return nil
	}
	root := r.PipelineRoot
	var store runner.ArtifactStore
	var err error
	if strings.Contains(root, "://") && !strings.HasPrefix(root, "file://") {
		store, err = a.openObjectStore(root)
	} else {
		store, err = a.openStore(nil, storage.LocalRootOf(root))
	}
	if err != nil {
		return err
	}
	return store.Delete(ctx, root)
}

func writeJSON(a *app, v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// reapInterrupted kills the step processes of runs whose mlpipe died on
// this machine (they would keep GPUs and race a resume).
func reapInterrupted(ctx context.Context, h *metadata.Store) {
	runs, err := h.ListRuns(ctx, 50)
	if err != nil {
		return
	}
	host, _ := os.Hostname()
	for _, r := range runs {
		if r.State == runner.Running && (r.Host == "" || r.Host == host) && !runAlive(r) {
			runner.KillOrphans(r.ID)
		}
	}
}

// shownTasks are the steps of a run as runs show prints them (also those
// that never ran, with the reason), with their last attempt's phases and
// GPU use. Groups (conditions, loops, sub-DAGs) are left out.
func shownTasks(tasks []*runner.TaskRecord, attempts []*runner.AttemptRecord) []taskJSON {
	byTask := map[string][]*runner.AttemptRecord{}
	for _, at := range attempts {
		byTask[at.TaskPath] = append(byTask[at.TaskPath], at)
	}
	var shown []taskJSON
	for _, t := range tasks {
		if t.Kind == "dag" {
			continue
		}
		tj := taskJSON{Name: t.Name, Path: t.Path, State: t.State, Attempts: t.Attempts, GPUs: t.GPUs, CachedFrom: t.CachedFrom, Error: t.Error,
			Outputs: taskOutputsJSON{Parameters: t.Outputs.Parameters, Artifacts: map[string][]artifactJSON{}}}
		if t.State == runner.Skipped || t.State == runner.Canceled || t.State == runner.Failed {
			tj.Reason = t.Error
		}
		if tj.GPUs == nil {
			tj.GPUs = []string{}
		}
		if tj.Outputs.Parameters == nil {
			tj.Outputs.Parameters = map[string]any{}
		}
		if !t.FinishedAt.IsZero() && !t.StartedAt.IsZero() {
			tj.DurationMS = t.FinishedAt.Sub(t.StartedAt).Milliseconds()
		}
		for name, arts := range t.Outputs.Artifacts {
			for _, ar := range arts {
				md := ar.Metadata
				if md == nil {
					md = map[string]any{}
				}
				tj.Outputs.Artifacts[name] = append(tj.Outputs.Artifacts[name], artifactJSON{URI: ar.URI, Digest: ar.Digest, Size: ar.Size, Metadata: md})
			}
		}
		ats := byTask[t.Path]
		if len(ats) > 0 {
			last := ats[len(ats)-1]
			tj.Phases = map[string]int64{}
			for _, p := range last.Phases {
				tj.Phases[p.Name] += p.Duration().Milliseconds()
			}
			if u := gpuUsage(last.GPUSamples); u != nil {
				tj.GPUUsage = u
			}
		}
		tj.extra = ats
		shown = append(shown, tj)
	}
	return shown
}

// writeRunText prints a run for people: its summary, a table of its tasks
// and why tasks failed (values and messages escaped for the terminal).
func writeRunText(w io.Writer, r *runner.RunRecord, shown []taskJSON) error {
	fmt.Fprintf(w, "Run %s of %s: %s", r.ID, r.Pipeline, displayState(r))
	fmt.Fprintf(w, " (started %s, %s, %s executor)\n", r.StartedAt.Local().Format("2006-01-02 15:04:05"), runDuration(r), r.Executor)
	if len(r.Params) > 0 {
		keys := slices.Sorted(maps.Keys(r.Params))
		var ps []string
		for _, k := range keys {
			ps = append(ps, k+"="+termsafe.Escape(runner.FormatValue(r.Params[k])))
		}
		fmt.Fprintf(w, "Parameters: %s\n", strings.Join(ps, " "))
	}
	if r.Error != "" {
		fmt.Fprintf(w, "Error: %s\n", termsafe.Escape(r.Error))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nTASK\tSTATE\tATTEMPTS\tDURATION\tGPUS\tOUTPUTS")
	for _, t := range shown {
		dur := "-"
		if t.DurationMS > 0 || (t.State.Final() && t.Reason == "") || t.Attempts > 0 {
			dur = fmtDuration(time.Duration(t.DurationMS) * time.Millisecond)
		}
		var outs []string
		for _, k := range slices.Sorted(maps.Keys(t.Outputs.Parameters)) {
			v := termsafe.Escape(runner.FormatValue(t.Outputs.Parameters[k]))
			if len(v) > 40 {
				v = v[:37] + "..."
			}
			outs = append(outs, k+"="+v)
		}
		for _, k := range slices.Sorted(maps.Keys(t.Outputs.Artifacts)) {
			outs = append(outs, k+"=<"+fmt.Sprint(len(t.Outputs.Artifacts[k]))+" artifact>")
		}
		gpus := "-"
		if len(t.GPUs) > 0 {
			gpus = strings.Join(shortUUIDs(t.GPUs), ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", t.Name, t.State, t.Attempts, dur, gpus, strings.Join(outs, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var notRun []taskJSON
	for _, t := range shown {
		switch {
		case t.Error != "" && t.State == runner.Failed:
			fmt.Fprintf(w, "\n%s failed: %s\n", t.Name, termsafe.Escape(t.Error))
		case t.State == runner.Skipped || t.State == runner.Canceled:
			notRun = append(notRun, t)
		}
	}
	if len(notRun) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nNot run:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, t := range notRun {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", termsafe.Escape(t.Name), t.State, termsafe.Escape(t.Reason))
	}
	return tw.Flush()
}
