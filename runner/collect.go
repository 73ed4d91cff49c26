package runner

import (
	"context"
	"errors"
	"os"
)

// A resumed run collects, rather than runs again, the attempt that the
// dead mlpipe had started and that ran to completion without it (a
// Docker container goes on when mlpipe is killed): its outputs are in the
// task directory, which the container had mounted. See Collector.

// finishedMeanwhile reports whether the last attempt of the task in the
// dead run finished successfully after mlpipe died and can be collected.
func (c *containerTask) finishedMeanwhile(ctx context.Context, prev *TaskRecord) bool {
	col, ok := c.r.opts.Executor.(Collector)
	if !ok || !c.r.opts.Resume || prev == nil || prev.State.OK() || prev.Attempts < 1 {
		return false
	}
	return col.Finished(ctx, c.r.runID, c.path, prev.Attempts, c.digest)
}

// execute runs the attempt, or collects it (collectOnly). An attempt that
// turns out not to be the one the dead run started (another image,
// command or environment) runs after all, from nothing.
func (c *containerTask) execute(ctx context.Context, et *ExecTask, ei *ExecutorInput) (*ExecResult, error) {
	if !c.collectOnly {
		return c.r.opts.Executor.Run(ctx, et)
	}
	c.collectOnly = false
	res, err := c.r.opts.Executor.(Collector).Collect(ctx, et)
	if errors.Is(err, ErrNotCollectable) {
		c.r.log.Info("the finished container of the interrupted attempt does not match the task: running it again", "task", c.path, "attempt", et.Attempt)
		if err := clearOutputs(ei); err != nil {
			return nil, err
		}
		return c.r.opts.Executor.Run(ctx, et)
	}
	if err == nil {
		c.r.emit(Event{Task: c.name, Path: c.path, State: Running, Attempt: et.Attempt, Message: "collected: it finished while mlpipe was gone"})
	}
	return res, err
}

// clearOutputs removes what an attempt may have written to its outputs
// (executorInput does the same for an attempt that is not collected).
func clearOutputs(ei *ExecutorInput) error {
	if ei.Outputs.local != "" {
		_ = os.Remove(ei.Outputs.local)
	}
	for _, p := range ei.Outputs.Parameters {
		_ = os.Remove(p.OutputFile)
	}
	for _, l := range ei.Outputs.Artifacts {
		for _, a := range l.Artifacts {
			if a.local == "" {
				continue
			}
			if err := os.RemoveAll(a.local); err != nil {
				return err
			}
		}
	}
	return nil
}
