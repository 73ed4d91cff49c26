package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mlpipe/mlpipe/internal/safefile"
	"github.com/mlpipe/mlpipe/internal/termsafe"
	"github.com/mlpipe/mlpipe/metadata"
	"github.com/mlpipe/mlpipe/runner"
)

var syscallZero = syscall.Signal(0)

func newLogsCmd(a *app) *cobra.Command {
	var follow bool
	var all bool
	cmd := &cobra.Command{
		Use:   "logs RUN [TASK]",
		Short: "Print the output of a run's tasks (all tasks, or one)",
		Long: `Print what a run's tasks wrote to stdout and stderr, task by task in the order they
started, each line prefixed with the task name. RUN is a run id, a unique prefix or
"latest"; TASK is a task name as shown by "mlpipe runs show" (e.g. train[0]).
With -f, keep printing new output until the run ends. For a task that did not run,
it says why (on stderr) and exits 0.`,
		Args: args(1, 2),
		RunE: func(cmd *cobra.Command, argv []string) error {
			task := ""
			if len(argv) > 1 {
				task = argv[1]
			}
			return runLogs(cmd.Context(), a, argv[0], task, follow, all)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "follow the logs until the run ends")
	cmd.Flags().BoolVar(&all, "all-attempts", false, "print every attempt, not only the last")
	return cmd
}

type logCursor struct {
	name   string
	path   string
	offset int64
	prefix bool
}

func runLogs(ctx context.Context, a *app, ref, task string, follow, all bool) error {
	h, err := a.openHistory()
	if err != nil {
		return err
	}
	defer h.Close()
	r, err := h.ResolveRun(ctx, ref)
	if err != nil {
		return usageError{err}
	}
	cursors := map[string]*logCursor{}
	var order []string
	for {
		found, err := collectLogs(ctx, h, r.ID, task, all, cursors, &order)
		if err != nil {
			return err
		}
		if task != "" && !found {
			// A followed task of a running run may simply not have
			// started yet: wait for it.
			cur, err := h.Run(ctx, r.ID)
			if err != nil {
				return err
			}
			if msg, err := notRunMessage(ctx, h, r.ID, task); err != nil || msg != "" {
				if err == nil {
					fmt.Fprintln(a.stderr, termsafe.Escape(msg))
				}
				return err
			}
			if !follow || cur.State != runner.Running || !runAlive(cur) {
				return usagef("run %s has no task %q that started (see: mlpipe runs show %s)", r.ID, task, r.ID)
			}
		}
		escape := task == "" || isTerminal(a.stdout)
		for _, k := range order {
			c := cursors[k]
			if err := c.copy(a.stdout, task == "", escape); err != nil {
				return err
			}
		}
		if !follow {
			return nil
		}
		cur, err := h.Run(ctx, r.ID)
		if err != nil {
			return err
		}
		if cur.State != runner.Running || !runAlive(cur) {
			// One last pass for what was written at the very end.
			_, _ = collectLogs(ctx, h, r.ID, task, all, cursors, &order)
			for _, k := range order {
				_ = cursors[k].copy(a.stdout, task == "", escape)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// notRunMessage says why a task has no log because it never ran ("task
// publish was skipped: ..."), or "" when task is no such task.
func notRunMessage(ctx context.Context, h *metadata.Store, runID, task string) (string, error) {
	tasks, err := h.Tasks(ctx, runID)
	if err != nil {
		return "", err
	}
	for _, t := range tasks {
		if t.Kind == "dag" || (task != t.Name && task != t.Path) || !t.State.Final() {
			continue
		}
		return fmt.Sprintf("task %s was %s, it has no log: %s", t.Path, strings.ToLower(string(t.State)), t.Error), nil
	}
	return "", nil
}

func collectLogs(ctx context.Context, h *metadata.Store, runID, task string, all bool, cursors map[string]*logCursor, order *[]string) (bool, error) {
	attempts, err := h.Attempts(ctx, runID, "")
	if err != nil {
		return false, err
	}
	last := map[string]int{}
	for _, at := range attempts {
		last[at.TaskPath] = max(last[at.TaskPath], at.Attempt)
	}
	sort.SliceStable(attempts, func(i, j int) bool { return attempts[i].StartedAt.Before(attempts[j].StartedAt) })
	found := false
	for _, at := range attempts {
		name := runner.DisplayName(at.TaskPath)
		if task != "" && task != name && task != at.TaskPath {
			continue
		}
		found = true
		if !all && at.Attempt != last[at.TaskPath] {
			continue
		}
		if at.LogPath == "" {
			continue
		}
		key := at.LogPath
		if _, ok := cursors[key]; !ok {
			label := name
			if at.Attempt > 1 || all {
				label = fmt.Sprintf("%s#%d", name, at.Attempt)
			}
			cursors[key] = &logCursor{name: label, path: at.LogPath}
			*order = append(*order, key)
		}
	}
	return found, nil
}

// copy prints what was appended to a log file since the last call, with
// control characters escaped (escape) unless the raw log is asked for (one
// task's log written to a file or a pipe).
func (c *logCursor) copy(w io.Writer, prefix, escape bool) error {
	// A container step could have replaced its log with a link: never
	// print another file through it.
	f, err := safefile.OpenRegular(c.path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return fmt.Errorf("log of %s: %w", c.name, err)
	}
	defer f.Close()
	if _, err := f.Seek(c.offset, io.SeekStart); err != nil {
		return err
	}
	br := bufio.NewReader(f)
	for {
		line, err := br.ReadString('\n')
		if len(line) > 0 && (strings.HasSuffix(line, "\n") || err == nil) {
			c.offset += int64(len(line))
			if escape {
				line = termsafe.Escape(line)
			}
			if prefix {
				fmt.Fprintf(w, "%s | %s", c.name, line)
			} else {
				io.WriteString(w, line)
			}
		}
		if err != nil {
			return nil
		}
	}
}
