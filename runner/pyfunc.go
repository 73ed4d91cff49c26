package runner

import (
	"context"
	"strings"

	"github.com/mlpipe/mlpipe/contract"
	"github.com/mlpipe/mlpipe/pyfunc"
)

// pythonRequest is what a KFP Python function component (pyfunc) needs
// installed, or nil for any other step or when the executor does not
// prepare Python. Parsed once per executor (a loop runs it for every
// iteration).
func (c *containerTask) pythonRequest(ctx context.Context) *pythonReq {
	r := c.r
	pp, ok := r.opts.Executor.(contract.PythonPreparer)
	if !ok || r.opts.NoPythonPrepare {
		return nil
	}
	comp, _ := r.pyfuncs.get(ctx, c.comp.GetExecutorLabel(), func() (*pyfunc.Component, error) {
		comp, _ := pyfunc.Parse(c.ct.Command, c.ct.Args)
		return comp, nil
	})
	if comp == nil {
		return nil
	}
	return &pythonReq{pp: pp, comp: comp, req: contract.PythonRequest{
		Component: c.compName, Image: c.image, Installs: comp.PipArgs(), Packages: comp.Packages(), Key: comp.Key()}}
}

// pythonReq is a Python function component's request to its executor.
type pythonReq struct {
	pp   contract.PythonPreparer
	comp *pyfunc.Component
	req  contract.PythonRequest
}

// PythonImageNamer is implemented by executors whose Python preparation
// runs a step on an image named from its base image's ID and the
// installs (the Docker executor): that name goes into the cache key, so
// that a task is looked up in the cache before anything is made, and a
// result stays cached when the derived image is removed and made again.
type PythonImageNamer interface {
	PythonTag(ctx context.Context, baseID string, req contract.PythonRequest) (tag string, exists bool, err error)
}

// preparePython readies the packages of a Python function component
// before its first attempt: the Docker executor derives an image with
// them installed and the task runs on it, the process executor makes a
// virtual environment that the step gets on its PATH. The step's own pip
// prologue then finds everything installed. Each (image, installs) is
// prepared once per run; the executors keep what they made for later
// runs.
func (c *containerTask) preparePython(ctx context.Context, py *pythonReq) error {
	r := c.r
	env, err := r.pyenvs.get(ctx, c.image+"\x00"+py.req.Key, func() (contract.PythonEnv, error) {
		return py.pp.PreparePython(ctx, py.req, r.outputWriter("python "+c.compName))
	})
	if err != nil {
		return err
	}
	if env.Image != "" {
		c.image = env.Image
	}
	c.pyEnv = env.Env
	c.noPrologue = !r.opts.KeepPythonPrologue && py.comp.Skippable
	r.log.DebugContext(ctx, "python function component", "task", c.path, "packages", strings.Join(py.req.Packages, " "), "env", env.Ref, "built", env.Built)
	return nil
}
