package runner

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"

	"github.com/mlpipe/mlpipe/platform"
)

// The kfp-kubernetes platform spec (the IR's `platforms: kubernetes:`
// document), mapped to the workstation by package platform: secrets and
// config maps from local stores, PVCs as directories, field paths, pod
// metadata as container labels, /dev/shm size, deadlines. What has no
// local meaning is a warning at the start of the run; what was mapped is a
// note the first time a component's task runs (docs/kfp-semantics.md).

// setupPlatform parses the platform spec and prints the warnings that do
// not depend on the run's values; a spec of the wrong shape is a problem
// that refuses the run.
func (r *run) setupPlatform(uses map[string][]string) []string {
	spec, err := platform.Parse(r.ir.Platform)
	if err != nil {
		return []string{fmt.Sprintf("the IR's kubernetes platform spec: %v", err)}
	}
	r.platform = spec
	for _, u := range spec.Unknown {
		r.warnf("platform spec: unknown field %s: ignored", u)
	}
	for _, compName := range slices.Sorted(maps.Keys(uses)) {
		cfg := spec.Executor(r.ir.Component(compName).GetExecutorLabel())
		for _, w := range cfg.StaticWarnings(platform.Task{RunID: r.runID, Pipeline: r.pipeline, TaskPath: strings.Join(uses[compName], ", ")}) {
			r.warnf("%s", w)
		}
	}
	return nil
}

// warnf writes a warning about the run into its output (or the log when
// the output is JSON).
func (r *run) warnf(format string, args ...any) {
	if r.opts.Output != nil {
		r.out.writeLine([]byte("mlpipe: warning: " + fmt.Sprintf(format, args...) + "\n"))
		return
	}
	r.log.Warn(fmt.Sprintf(format, args...))
}

// platformRefs resolves, in the scope of DAG d, the parameters that name
// the task's secrets, config maps and PVCs (a pipeline input, an input of
// the task, or a sibling's output), for preparePlatform.
func (d *dagRun) platformRefs(label string, in *resolvedInputs, results map[string]*taskResult) {
	cfg := d.r.platform.Executor(label)
	for _, ref := range cfg.Refs() {
		var v any
		ok := false
		switch {
		case ref.ComponentInputParameter != "":
			v, ok = in.params[ref.ComponentInputParameter]
			if !ok {
				v, ok = d.params[ref.ComponentInputParameter]
			}
		case ref.TaskOutputParameter != nil:
			if res := results[ref.TaskOutputParameter.ProducerTask]; res != nil && res.out != nil {
				v, ok = res.out.params[ref.TaskOutputParameter.OutputParameterKey]
			}
		}
		if !ok || v == nil {
			continue
		}
		if in.platform == nil {
			in.platform = map[string]string{}
		}
		s, isString := v.(string)
		if !isString {
			s = fmt.Sprint(v)
		}
		in.platform[platform.RefKey(ref)] = s
	}
}

// preparePlatform maps the task's platform settings before its first
// attempt; a missing secret fails the task here, before it starts.
func (c *containerTask) preparePlatform() error {
	r := c.r
	label := c.comp.GetExecutorLabel()
	cfg := r.platform.Executor(label)
	if cfg == nil {
		return nil
	}
	resolve := func(ref platform.ParamRef) (string, error) {
		if ref.Constant != nil {
			if s, ok := ref.Constant.(string); ok {
				return s, nil
			}
			return fmt.Sprint(ref.Constant), nil
		}
		if v, ok := c.in.platform[platform.RefKey(ref)]; ok {
			return v, nil
		}
		return "", fmt.Errorf("%s has no value", platform.RefKey(ref))
	}
	scratch := filepath.Join(c.dir, "platform")
	// A resumed task's directory is what its steps left: no link there
	// may take the secrets' copies elsewhere.
	if err := noLinksBelow(c.dir, scratch); err != nil {
		return err
	}
	if err := os.RemoveAll(scratch); err != nil {
		return err
	}
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return err
	}
	local, err := cfg.Local(platform.Task{RunID: r.runID, Pipeline: r.pipeline, TaskPath: c.path}, r.opts.Platform, resolve, scratch)
	if err != nil {
		return err
	}
	c.plat = local
	if _, seen := r.platformNoted.LoadOrStore(label, true); seen {
		return nil
	}
	for _, m := range local.Mapped {
		r.notef(c.name, "%s", m)
	}
	if !r.opts.Executor.Properties().Isolated {
		for _, m := range local.Mounts {
			r.warnf("task %s: %s would be mounted at %s; the %s executor runs steps on the host and mounts nothing (use --executor docker)", c.path, m.HostPath, m.ContainerPath, r.opts.Executor.Name())
		}
		for _, p := range local.PVCs {
			r.warnf("task %s: PVC %s would be mounted at %s; the %s executor runs steps on the host and mounts nothing: it is the directory %s", c.path, p.Name, p.MountPath, r.opts.Executor.Name(), r.pvcDir(p.Name, p.HostDir))
		}
		for _, e := range local.EmptyDirs {
			r.warnf("task %s: an empty directory would be mounted at %s; the %s executor mounts nothing", c.path, e.MountPath, r.opts.Executor.Name())
		}
	}
	if local.PullPolicy == "Always" {
		r.notef(c.name, "imagePullPolicy Always: the local image is used when there is one (mlpipe pulls only images that are missing)")
	}
	return nil
}

// platformMounts returns the task's mounts from the platform spec: secret
// and config map files, PVC directories (made when missing) and fresh empty
// directories.
func (c *containerTask) platformMounts() ([]Mount, error) {
	if c.plat == nil || !c.r.opts.Executor.Properties().Isolated {
		return nil, nil
	}
	ms := slices.Clone(c.plat.Mounts)
	for _, p := range c.plat.PVCs {
		dir := c.r.pvcDir(p.Name, p.HostDir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("PVC %s: %w", p.Name, err)
		}
		if p.SubPath != "" {
			// Steps write in the PVC: a link they left there must not
			// carry the mount (or the directory made for it) elsewhere.
			sub, err := joinUnder(dir, p.SubPath)
			if err == nil {
				err = noLinksBelow(dir, sub)
			}
			if err == nil {
				err = os.MkdirAll(sub, 0o755)
			}
			if err == nil {
				err = inside(dir, sub)
			}
			if err != nil {
				return nil, fmt.Errorf("PVC %s: subPath %s: %w", p.Name, p.SubPath, err)
			}
			dir = sub
		}
		ms = append(ms, Mount{HostPath: dir, ContainerPath: p.MountPath})
	}
	for i, e := range c.plat.EmptyDirs {
		if e.Medium == "Memory" {
			ms = append(ms, Mount{ContainerPath: e.MountPath, Tmpfs: true, TmpfsSize: e.SizeLimit})
			continue
		}
		dir := filepath.Join(c.dir, "emptydir", strconv.Itoa(i))
		// The task directory is the step's to write: no link of an
		// earlier attempt may point the removal elsewhere.
		if err := noLinksBelow(c.dir, dir); err != nil {
			return nil, err
		}
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return nil, err
		}
		ms = append(ms, Mount{HostPath: dir, ContainerPath: e.MountPath})
	}
	return ms, nil
}

// pvcDir is the directory of a PVC: the one the user's configuration maps
// it to, else <state dir>/pvcs/<name>.
func (r *run) pvcDir(name, hostDir string) string {
	if hostDir != "" {
		return hostDir
	}
	return filepath.Join(r.opts.StateDir, "pvcs", name)
}

// runPVCTask runs the SDK's kubernetes.CreatePVC / DeletePVC tasks, whose
// images (argostub/createpvc, argostub/deletepvc) do not exist: the
// backend does the work, and so does mlpipe. A PVC is a directory (see
// pvcDir); CreatePVC outputs its name, DeletePVC removes a directory
// mlpipe made (never one the configuration maps).
func (c *containerTask) runPVCTask() *taskResult {
	r := c.r
	params := withDefaults(c.comp, c.in.params)
	if platform.IsCreatePVC(c.image) {
		// The run id stands for the workflow name; PVC names are DNS
		// names (lower case, no '_' or '.').
		name, err := platform.CreatePVCName(params, strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(r.runID)))
		if err != nil {
			return c.finish(Failed, nil, err.Error())
		}
		dir := r.pvcDir(name, r.opts.Platform.PVCs[name])
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return c.finish(Failed, nil, fmt.Sprintf("create PVC %s: %v", name, err))
		}
		r.notef(c.name, "PVC %s is the directory %s", name, dir)
		out := newOutputs()
		out.params["name"] = name
		return c.finish(Succeeded, out, "")
	}
	name, err := platform.DeletePVCName(params)
	if err != nil {
		return c.finish(Failed, nil, err.Error())
	}
	if mapped := r.opts.Platform.PVCs[name]; mapped != "" {
		r.notef(c.name, "PVC %s is the configured directory %s: left in place", name, mapped)
		return c.finish(Succeeded, newOutputs(), "")
	}
	if err := os.RemoveAll(r.pvcDir(name, "")); err != nil {
		return c.finish(Failed, nil, fmt.Sprintf("delete PVC %s: %v", name, err))
	}
	return c.finish(Succeeded, newOutputs(), "")
}

// platformDeps adds to deps the producers of the outputs that name a
// task's secrets, config maps or PVCs (taskOutputParameter in the platform
// spec), which the task's own inputs may not mention: it must wait for
// them. An edge that would close a cycle is left out (the task then fails
// with "no value" rather than the DAG waiting for ever).
func (d *dagRun) platformDeps(tasks map[string]*pb.PipelineTaskSpec, deps map[string][]string) {
	if d.r.platform == nil {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(tasks)) {
		comp := d.r.ir.Component(tasks[k].GetComponentRef().GetName())
		for _, ref := range d.r.platform.Executor(comp.GetExecutorLabel()).Refs() {
			if ref.TaskOutputParameter == nil {
				continue
			}
			p := ref.TaskOutputParameter.ProducerTask
			if _, ok := tasks[p]; !ok || p == k || slices.Contains(deps[k], p) || reaches(deps, p, k) {
				continue
			}
			deps[k] = append(deps[k], p)
		}
	}
}

// reaches reports whether task from depends, directly or not, on to.
func reaches(deps map[string][]string, from, to string) bool {
	seen := map[string]bool{}
	stack := []string{from}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n == to {
			return true
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		stack = append(stack, deps[n]...)
	}
	return false
}

// inside checks that p, links resolved, lies in root (links resolved).
func inside(root, p string) error {
	r, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	q, err := filepath.EvalSymlinks(p)
	if err != nil {
		return err
	}
	if rel, err := filepath.Rel(r, q); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("%s leads outside %s", p, root)
	}
	return nil
}
