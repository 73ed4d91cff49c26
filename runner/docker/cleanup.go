package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/mlpipe/mlpipe/internal/procfs"
)

// Cleanup removes the containers that this user's mlpipe processes of this
// host left behind for this state directory when they died (killed,
// crashed, machine reset): containers labelled with a PID that no longer
// runs, or that now belongs to another process. Containers of live mlpipe
// processes, of other users, of other state directories and of other hosts
// sharing the daemon are left alone. It returns how many it removed.
func (e *Executor) Cleanup(ctx context.Context) (int, error) {
	return e.CleanupKeeping(ctx, "")
}

// CleanupKeeping is Cleanup, except that the containers of run keepRun
// that exited with code 0 stay: the resume of that run collects them
// (Collect). Call Cleanup once the resume is over.
func (e *Executor) CleanupKeeping(ctx context.Context, keepRun string) (int, error) {
	list, err := e.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelPID))})
	if err != nil {
		return 0, fmt.Errorf("list mlpipe's containers: %w", ctxErr(ctx, err))
	}
	n := 0
	var errs []error
	for _, c := range list {
		if !e.orphan(c.Labels) {
			continue
		}
		if keepRun != "" && c.Labels[LabelRun] == keepRun && c.State == "exited" {
			if info, err := e.cli.ContainerInspect(ctx, c.ID); err == nil && info.State != nil && info.State.ExitCode == 0 && !info.State.OOMKilled {
				continue
			}
		}
		if err := e.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !gone(err) {
			errs = append(errs, fmt.Errorf("remove container %s of run %s: %w", short(c.ID), c.Labels[LabelRun], err))
			continue
		}
		e.log.InfoContext(ctx, "removed a container left by a dead mlpipe process", "container", short(c.ID), "run_id", c.Labels[LabelRun], "task", c.Labels[LabelTask], "pid", c.Labels[LabelPID])
		n++
	}
	return n, errors.Join(errs...)
}

// orphan reports whether the container is this user's, of this state
// directory, and its owning mlpipe process, on this host, is gone.
func (e *Executor) orphan(labels map[string]string) bool {
	if h := labels[LabelHost]; h != "" && h != e.host {
		return false
	}
	if labels[LabelUID] != strconv.Itoa(os.Getuid()) || labels[LabelStateDir] != e.opts.StateDir {
		return false // another user's, another state dir's, or unlabelled
	}
	pid, err := strconv.Atoi(labels[LabelPID])
	if err != nil || pid <= 0 {
		return false
	}
	if pid == e.pid && labels[LabelPIDStart] == e.start {
		return false
	}
	return !alive(pid, labels[LabelPIDStart])
}

// alive reports whether process pid runs and, when start is known, is the
// process that started at that time (not a later process given the same
// PID).
func alive(pid int, start string) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if start == "" {
		return true
	}
	now := procfs.StartTime(pid)
	return now == "" || now == start
}

// ContainerRunning reports whether a container exists and runs (GPU leases
// of Docker steps stay held while their container lives, even if the
// mlpipe that started it died).
func (e *Executor) ContainerRunning(ctx context.Context, id string) bool {
	c, err := e.cli.ContainerInspect(ctx, id)
	return err == nil && c.State != nil && c.State.Running
}
