package docker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/mlpipe/mlpipe/contract"
)

var _ contract.Collector = (*Executor)(nil)

// finished returns the container of an attempt that a dead mlpipe process
// of this host started and that exited with code 0 since, if there is one.
func (e *Executor) finished(ctx context.Context, runID, taskPath string, attempt int) (*container.InspectResponse, bool) {
	list, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", LabelRun+"="+runID),
		filters.Arg("label", LabelTask+"="+taskPath),
		filters.Arg("label", LabelAttempt+"="+strconv.Itoa(attempt)),
	)})
	if err != nil {
		return nil, false
	}
	for _, c := range list {
		// The filters match labels; check them again, exactly.
		if c.Labels[LabelRun] != runID || c.Labels[LabelTask] != taskPath || c.Labels[LabelAttempt] != strconv.Itoa(attempt) || !e.orphan(c.Labels) {
			continue
		}
		info, err := e.cli.ContainerInspect(ctx, c.ID)
		if err != nil || info.State == nil || info.State.Running || info.State.Status != "exited" || info.State.ExitCode != 0 || info.State.OOMKilled {
			continue
		}
		return &info, true
	}
	return nil, false
}

// Finished implements contract.Collector.
func (e *Executor) Finished(ctx context.Context, runID, taskPath string, attempt int, imageID string) bool {
	info, ok := e.finished(ctx, runID, taskPath, attempt)
	return ok && (imageID == "" || info.Image == imageID)
}

// Collect implements contract.Collector.
func (e *Executor) Collect(ctx context.Context, t *contract.ExecTask) (*contract.ExecResult, error) {
	info, ok := e.finished(ctx, t.RunID, t.TaskPath, t.Attempt)
	if !ok {
		return nil, contract.ErrNotCollectable
	}
	imageID, err := e.ResolveImage(ctx, t.Image, t.Stderr)
	if err != nil {
		return nil, err
	}
	want, _ := e.spec(t, imageID)
	if info.Image != imageID || info.Config == nil || !slices.Equal(info.Config.Entrypoint, want.Entrypoint) ||
		!slices.Equal(info.Config.Cmd, want.Cmd) || !containsAll(info.Config.Env, want.Env) {
		return nil, contract.ErrNotCollectable
	}
	bg := context.WithoutCancel(ctx)
	// The dead mlpipe logged what the step printed until it died: the log
	// is written again, whole, from the daemon's.
	if rc, err := e.cli.ContainerLogs(bg, info.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true}); err == nil {
		_, _ = stdcopy.StdCopy(discard(t.Stdout), discard(t.Stderr), rc)
		rc.Close()
	}
	if t.Phase != nil {
		start, err1 := time.Parse(time.RFC3339Nano, info.State.StartedAt)
		end, err2 := time.Parse(time.RFC3339Nano, info.State.FinishedAt)
		if err1 == nil && err2 == nil && !end.Before(start) {
			t.Phase("execute", start, end)
		}
	}
	if err := e.cli.ContainerRemove(bg, info.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !gone(err) {
		e.log.WarnContext(ctx, "remove container", "container", short(info.ID), "task", t.TaskPath, "error", err)
	}
	e.log.InfoContext(ctx, "collected a container that finished while mlpipe was gone", "container", short(info.ID), "run_id", t.RunID, "task", t.TaskPath, "attempt", t.Attempt)
	return &contract.ExecResult{ExitCode: 0, ImageDigest: imageID}, nil
}

func containsAll(have, want []string) bool {
	set := make(map[string]bool, len(have))
	for _, s := range have {
		set[s] = true
	}
	for _, s := range want {
		if !set[s] {
			return false
		}
	}
	return true
}

// RemoveOwn removes, by force, every container this process created that
// still exists: what a forced exit (a second Ctrl-C) must not leave
// behind, running or stopped. It returns how many it removed.
func (e *Executor) RemoveOwn(ctx context.Context) (int, error) {
	list, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelPID+"="+strconv.Itoa(e.pid)))})
	if err != nil {
		return 0, fmt.Errorf("list mlpipe's containers: %w", ctxErr(ctx, err))
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		n    int
		errs []error
	)
	for _, c := range list {
		if c.Labels[LabelHost] != e.host || c.Labels[LabelPIDStart] != e.start {
			continue
		}
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			err := e.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
			mu.Lock()
			defer mu.Unlock()
			if err != nil && !gone(err) {
				errs = append(errs, fmt.Errorf("remove container %s: %w", short(id), err))
				return
			}
			n++
		}(c.ID)
	}
	wg.Wait()
	return n, errors.Join(errs...)
}
