package main

import (
	"cmp"
	"context"
	"maps"
	"slices"

	"github.com/mlpipe/mlpipe/compiler"
	"github.com/mlpipe/mlpipe/contract"
	"github.com/mlpipe/mlpipe/kfpir"
	"github.com/mlpipe/mlpipe/pyfunc"
	"github.com/mlpipe/mlpipe/runner/docker"
)

// pythonPreparer is what plan and build need of an executor for KFP
// Python function components.
type pythonPreparer interface {
	contract.PythonPreparer
	PythonPrepared(ctx context.Context, req contract.PythonRequest) (ref string, ok bool, err error)
}

// pythonRequests lists the Python function components of an IR, one per
// (image, installs), sorted by component.
func pythonRequests(ir *kfpir.IR) []contract.PythonRequest {
	seen := map[string]bool{}
	var out []contract.PythonRequest
	for _, label := range slices.Sorted(maps.Keys(ir.Executors)) {
		e := ir.Executors[label]
		if e.Container == nil {
			continue
		}
		c, _ := pyfunc.Parse(e.Container.Command, e.Container.Args)
		if c == nil || seen[e.Container.Image+"\x00"+c.Key()] {
			continue
		}
		seen[e.Container.Image+"\x00"+c.Key()] = true
		out = append(out, contract.PythonRequest{Component: componentOf(ir, label), Image: e.Container.Image,
			Installs: c.PipArgs(), Packages: c.Packages(), Key: c.Key()})
	}
	slices.SortFunc(out, func(a, b contract.PythonRequest) int { return cmp.Compare(a.Component, b.Component) })
	return out
}

// componentOf names the component that uses an executor label.
func componentOf(ir *kfpir.IR, label string) string {
	for _, name := range slices.Sorted(maps.Keys(ir.Spec.GetComponents())) {
		if ir.Spec.GetComponents()[name].GetExecutorLabel() == label {
			return name
		}
	}
	return label
}

// pythonExecutor returns the executor whose Python environments plan and
// build look at: Docker unless the configuration chooses the process
// executor or Docker does not answer (auto).
func (a *app) pythonExecutor(ctx context.Context, contexts map[string]string) (pythonPreparer, func(), error) {
	if a.cfg.Executor != "process" {
		ex, err := a.newDocker(ctx, docker.Options{BuildContexts: contexts})
		if err == nil {
			return ex, func() { ex.Close() }, nil
		}
		if a.cfg.Executor == "docker" {
			return nil, nil, err
		}
	}
	return a.processExecutor(), func() {}, nil
}

// markPrepared fills in, for the plan's Python function components,
// whether their packages are installed ahead of the step already. When no
// executor can be asked, the plan says nothing about it.
func (a *app) markPrepared(ctx context.Context, ir *kfpir.IR, source string, pl *compiler.Plan) {
	reqs := pythonRequests(ir)
	if len(reqs) == 0 {
		return
	}
	contexts, _ := buildContexts(source)
	ex, done, err := a.pythonExecutor(ctx, contexts)
	if err != nil {
		return
	}
	defer done()
	type state struct {
		ref string
		ok  bool
	}
	states := map[string]state{}
	for _, req := range reqs {
		ref, ok, err := ex.PythonPrepared(ctx, req)
		if err != nil {
			a.log.DebugContext(ctx, "python environment", "component", req.Component, "error", err)
			continue
		}
		states[req.Image+"\x00"+req.Key] = state{ref, ok}
	}
	for _, t := range pl.Tasks {
		if t.Python == nil {
			continue
		}
		e := ir.Executors[ir.Spec.GetComponents()[t.Component].GetExecutorLabel()]
		if e == nil || e.Container == nil {
			continue
		}
		c, _ := pyfunc.Parse(e.Container.Command, e.Container.Args)
		if c == nil {
			continue
		}
		if st, ok := states[e.Container.Image+"\x00"+c.Key()]; ok {
			t.Python.Ref = st.ref
			t.Python.Prepared = map[bool]string{true: "yes", false: "no"}[st.ok]
		}
	}
}
