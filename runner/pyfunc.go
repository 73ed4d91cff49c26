package runner

import (
	"context"
	"strings"
	"time"

	"github.com/mlpipe/mlpipe/contract"
	"github.com/mlpipe/mlpipe/pyfunc"
)

// preparePython readies the packages of a KFP Python function component
// (pyfunc) before its first attempt, when the executor can: the Docker
// executor derives an image with them installed and the task runs on it,
// the process executor makes a virtual environment that the step gets on
// its PATH. The step's own pip prologue then finds everything installed.
// Each (image, installs) is prepared once per run; the executors keep
// what they made for later runs. The time counts in the "image" phase.
func (c *containerTask) preparePython(ctx context.Context) error {
	r := c.r
	pp, ok := r.opts.Executor.(contract.PythonPreparer)
	if !ok || r.opts.NoPythonPrepare {
		return nil
	}
	// Parsed once per executor (a loop runs it for every iteration).
	comp, _ := r.pyfuncs.get(ctx, c.comp.GetExecutorLabel(), func() (*pyfunc.Component, error) {
		comp, _ := pyfunc.Parse(c.ct.Command, c.ct.Args)
		return comp, nil
	})
	if comp == nil {
		return nil
	}
	req := contract.PythonRequest{Component: c.compName, Image: c.image, Installs: comp.PipArgs(), Packages: comp.Packages(), Key: comp.Key()}
	start := time.Now()
	env, err := r.pyenvs.get(ctx, c.image+"\x00"+req.Key, func() (contract.PythonEnv, error) {
		return pp.PreparePython(ctx, req, r.outputWriter("python "+c.compName))
	})
	c.pyPhase = &Phase{Name: "image", Start: start, End: time.Now()}
	if err != nil {
		return err
	}
	if env.Image != "" {
		c.image = env.Image
	}
	c.pyEnv = env.Env
	c.noPrologue = !r.opts.KeepPythonPrologue && comp.Skippable
	r.log.DebugContext(ctx, "python function component", "task", c.path, "packages", strings.Join(req.Packages, " "), "env", env.Ref, "built", env.Built)
	return nil
}
