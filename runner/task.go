package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/mlpipe/mlpipe/kfpir"
	"github.com/mlpipe/mlpipe/platform"
)

// containerTask is the state of one container task across its attempts.
type containerTask struct {
	r        *run
	path     string
	name     string
	key      string
	t        *pb.PipelineTaskSpec
	comp     *pb.ComponentSpec
	compName string
	ct       *kfpir.Container
	in       *resolvedInputs
	dir      string // task root directory
	relDir   string // dir relative to the run's directory (taskRelDir)
	rec      *TaskRecord
	image    string
	digest   string
	cpu      float64 // reserved (request, else limit)
	mem      int64
	cpuLim   float64 // limits (0: the reservation), at most the machine
	memLim   int64
	gpus     int
	gpuType  string
	env      []string
	prio     int
	exempt   bool
	// imagePhase is the time spent resolving (building, pulling) the image,
	// reported with the first attempt.
	imagePhase *Phase
	// pyEnv is added to the step's environment for a Python function
	// component (preparePython).
	pyEnv []string
	// keyImage, when set, stands for the image in the cache key: the image
	// a Python function component will run on, named before it is made
	// (PythonImageNamer).
	keyImage string
	// noPrologue: the packages are installed; the step runs without its
	// pip prologue (pyfunc.WithoutPrologue).
	noPrologue bool
	// plat is what the IR's platform spec means for the task
	// (preparePlatform), or nil.
	plat *platform.Local
	// collectOnly: the first attempt is the one the dead run started,
	// finished since, to collect rather than run (collect.go).
	collectOnly bool
}

// execContainer runs a container task: resume and cache checks, resource
// and GPU acquisition, attempts with retries, output collection.
func (r *run) execContainer(ctx context.Context, d *dagRun, key string, t *pb.PipelineTaskSpec, comp *pb.ComponentSpec, ct *kfpir.Container, in *resolvedInputs, exempt bool, prio int) *taskResult {
	path := d.taskPath(key)
	c := &containerTask{r: r, path: path, name: DisplayName(path), key: key, t: t, comp: comp, compName: t.GetComponentRef().GetName(), ct: ct, in: in}
	c.rec = &TaskRecord{RunID: r.runID, Path: path, Name: c.name, Component: c.compName, Kind: "container", State: Pending,
		Inputs: inputRecords(in)}
	rel, err := taskRelDir(path)
	if err == nil {
		c.dir, err = joinUnder(r.runDir, rel)
	}
	if err != nil {
		return c.finish(Failed, nil, err.Error())
	}
	c.relDir = rel
	if res := c.resumed(ctx); res != nil {
		return res
	}
	target := r.isTarget(c.name)
	res := c.run(ctx, target, exempt, prio)
	res.tainted = target
	return res
}

func (c *containerTask) run(ctx context.Context, target, exempt bool, prio int) *taskResult {
	r := c.r
	if err := c.prepare(); err != nil {
		return c.finish(Failed, nil, err.Error())
	}
	if platform.IsCreatePVC(c.image) || platform.IsDeletePVC(c.image) {
		return c.runPVCTask()
	}
	fail := func(err error) *taskResult {
		if ctx.Err() != nil {
			return c.finish(Canceled, nil, "cancelled")
		}
		return c.finish(Failed, nil, err.Error())
	}
	// The image's digest (Docker) and what a Python function component
	// runs on, for the cache key; the "image" phase.
	py := c.pythonRequest(ctx)
	resolver, resolves := r.opts.Executor.(ImageResolver)
	start := time.Now()
	if resolves || py != nil {
		c.rec.StartedAt = start
		c.imagePhase = &Phase{Name: "image", Start: start}
	}
	if resolves {
		digest, err := r.resolveImage(ctx, resolver, c.image)
		if err != nil {
			return fail(err)
		}
		c.digest = digest
		if namer, ok := r.opts.Executor.(PythonImageNamer); ok && py != nil {
			tag, _, err := namer.PythonTag(ctx, digest, py.req)
			if err != nil {
				return fail(err)
			}
			c.keyImage = tag
		} else if py != nil {
			// The image it will run on is not known before it is made.
			if err := c.preparePython(ctx, py); err != nil {
				return fail(err)
			}
			py = nil
			if c.digest, err = r.resolveImage(ctx, resolver, c.image); err != nil {
				return fail(err)
			}
		}
	}
	if c.imagePhase != nil {
		c.imagePhase.End = time.Now()
	}
	enableCache := c.t.GetCachingOptions().GetEnableCache()
	key2, keyErr := c.cacheKey()
	if keyErr == nil {
		c.rec.CacheKey = key2
	}
	if enableCache && !r.opts.NoCache && !target && keyErr == nil {
		// The key holds the inputs' recorded digests: a local input an
		// earlier consumer changed in place must not be served from the
		// cache under them.
		if err := c.checkLocalInputs(ctx); err != nil {
			return c.finish(Failed, nil, err.Error())
		}
		if out := c.cacheLookup(ctx, key2); out != nil {
			return out
		}
	}
	// Not served from the cache: a Python function component's packages
	// are installed now (the time counts in the "image" phase).
	if py != nil {
		if err := c.preparePython(ctx, py); err != nil {
			return fail(err)
		}
		if resolves {
			digest, err := r.resolveImage(ctx, resolver, c.image)
			if err != nil {
				return fail(err)
			}
			c.digest = digest
		}
		c.imagePhase.End = time.Now()
	}
	// The platform settings are not in the cache key (a rotated secret
	// does not invalidate results): a task served from the cache needs
	// none of its secrets; one that runs gets them here, before its
	// resources and first attempt.
	if err := c.preparePlatform(); err != nil {
		return c.finish(Failed, nil, err.Error())
	}
	if c.plat != nil {
		// Copies of secrets and the empty directories go with the task,
		// as with its pod (RemoveAll does not follow a link in their place).
		defer func() {
			_ = os.RemoveAll(filepath.Join(c.dir, "platform"))
			_ = os.RemoveAll(filepath.Join(c.dir, "emptydir"))
		}()
	}
	// Wait for GPUs, then for a slot and CPU/memory.
	c.rec.State = Pending
	var lease GPULease
	if c.gpus > 0 {
		if r.opts.GPUs == nil {
			why := r.opts.GPUUnavailable
			if why == "" {
				why = "no GPU allocator"
			}
			return c.finish(Failed, nil, fmt.Sprintf("task needs %d GPU(s) but none can be used: %s", c.gpus, why))
		}
		l, err := r.opts.GPUs.Acquire(ctx, GPURequest{RunID: r.runID, Task: c.path, Count: c.gpus, Type: c.gpuType,
			Waiting: func(msg string) {
				r.emit(Event{Task: DisplayName(c.path), Path: c.path, State: Pending, Message: msg})
			}})
		if err != nil {
			if ctx.Err() != nil {
				return c.finish(Canceled, nil, "cancelled while waiting for GPUs")
			}
			return c.finish(Failed, nil, fmt.Sprintf("acquire %d GPU(s): %v", c.gpus, err))
		}
		lease = l
		defer lease.Release()
		c.rec.GPUs = lease.UUIDs()
	}
	c.prio, c.exempt = prio, exempt
	return c.attempts(ctx, lease)
}

// prepare resolves the executor's image, resources and environment.
func (c *containerTask) prepare() error {
	params := withDefaults(c.comp, c.in.params)
	resolve := func(s string) (string, error) {
		if !strings.Contains(s, "{{$") {
			return s, nil
		}
		pc := &placeholderContext{in: &ExecutorInput{Inputs: ExecInputs{ParameterValues: params}}, job: c.r.jobInfo(c.path, c.key)}
		return pc.substitute(s)
	}
	var err error
	if c.image, err = resolve(c.ct.Image); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	res := c.ct.Resources
	quantity := func(what, s string) (float64, error) {
		v, err := resolve(s)
		if err != nil || v == "" {
			return 0, err
		}
		q, err := kfpir.ParseQuantity(v)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		return q, nil
	}
	cpuReq, err := quantity("cpu request", res.CPURequest)
	if err != nil {
		return err
	}
	cpuLim, err := quantity("cpu limit", res.CPULimit)
	if err != nil {
		return err
	}
	memReq, err := quantity("memory request", res.MemoryRequest)
	if err != nil {
		return err
	}
	memLim, err := quantity("memory limit", res.MemoryLimit)
	if err != nil {
		return err
	}
	// A request is a reservation: above the machine it can never be met.
	// A limit is a ceiling: above the machine it is the machine (the SDK's
	// samples ask for 4000m; Docker refuses more CPUs than there are).
	if cpuReq > c.r.opts.CPUs {
		return fmt.Errorf("the task requests %s CPUs but the budget is %s", fmtFloat(cpuReq), fmtFloat(c.r.opts.CPUs))
	}
	if memReq > float64(c.r.opts.Memory) {
		return fmt.Errorf("the task requests %s of memory but the machine has %s", kfpir.FormatBytes(memReq), kfpir.FormatBytes(float64(c.r.opts.Memory)))
	}
	if cpuLim > c.r.opts.CPUs {
		c.r.notef(c.name, "cpu limit %s is above this machine's budget of %s CPUs: limited to %s", fmtFloat(cpuLim), fmtFloat(c.r.opts.CPUs), fmtFloat(c.r.opts.CPUs))
		cpuLim = c.r.opts.CPUs
	}
	if memLim > float64(c.r.opts.Memory) {
		c.r.notef(c.name, "memory limit %s is above this machine's %s: limited to %s", kfpir.FormatBytes(memLim), kfpir.FormatBytes(float64(c.r.opts.Memory)), kfpir.FormatBytes(float64(c.r.opts.Memory)))
		memLim = float64(c.r.opts.Memory)
	}
	c.cpu, c.cpuLim = cmp.Or(cpuReq, cpuLim), cpuLim
	c.mem, c.memLim = int64(cmp.Or(memReq, memLim)), int64(memLim)
	if res.AcceleratorCount != "" {
		n, err := resolve(res.AcceleratorCount)
		if err != nil {
			return fmt.Errorf("accelerator count: %w", err)
		}
		n = strings.TrimSpace(n)
		// A Boolean pipeline input means one GPU or none (mlpipe's
		// pipeline format; KFP itself takes only counts).
		switch strings.ToLower(n) {
		case "true":
			n = "1"
		case "false", "":
			n = "0"
		}
		cnt, err := strconv.ParseFloat(n, 64)
		if err != nil || cnt < 0 || cnt != math.Trunc(cnt) {
			return fmt.Errorf("accelerator count %q is not a whole number", n)
		}
		c.gpus = int(cnt)
		c.gpuType, _ = resolve(res.AcceleratorType)
	}
	c.env = expandEnv(c.ct.Env)
	// TASK_CONFIG inputs are filled by the backend, never by the task
	// (docs/kfp-semantics.md §4.12): give the step its env and resources.
	for name := range c.comp.GetInputDefinitions().GetParameters() {
		if !c.r.ir.TaskConfig[c.compName+"/"+name] {
			continue
		}
		if _, ok := c.in.params[name]; ok {
			continue
		}
		env := map[string]any{}
		for _, kv := range c.env {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		res := map[string]any{}
		if c.cpu > 0 {
			res["cpuRequest"] = c.cpu
		}
		if c.mem > 0 {
			res["memoryRequest"] = float64(c.mem)
		}
		if c.gpus > 0 {
			res["accelerator"] = map[string]any{"type": c.gpuType, "count": float64(c.gpus)}
		}
		c.in.params[name] = map[string]any{"env": env, "resources": res}
	}
	return nil
}

// expandEnv applies Kubernetes $(VAR) expansion over the container's own
// earlier variables; $$(VAR) escapes.
func expandEnv(env []kfpir.EnvVar) []string {
	vals := map[string]string{}
	var out []string
	for _, e := range env {
		v := e.Value
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if v[i] == '$' && i+1 < len(v) && v[i+1] == '$' && i+2 < len(v) && v[i+2] == '(' {
				b.WriteString("$(")
				i += 2
				continue
			}
			if v[i] == '$' && i+1 < len(v) && v[i+1] == '(' {
				if end := strings.IndexByte(v[i+2:], ')'); end >= 0 {
					name := v[i+2 : i+2+end]
					if val, ok := vals[name]; ok {
						b.WriteString(val)
						i += 2 + end
						continue
					}
				}
			}
			b.WriteByte(v[i])
		}
		vals[e.Name] = b.String()
		out = append(out, e.Name+"="+b.String())
	}
	return out
}

// resolveImage asks the executor for an image's digest once per image.
func (r *run) resolveImage(ctx context.Context, res ImageResolver, image string) (string, error) {
	return r.images.get(ctx, image, func() (string, error) {
		return res.ResolveImage(ctx, image, r.outputWriter("image "+image))
	})
}

// resumed returns the earlier result of this task when a resumed run had
// already finished it and its artifacts are still there.
func (c *containerTask) resumed(ctx context.Context) *taskResult {
	prev := c.r.prior[c.path]
	if prev == nil || !prev.State.OK() {
		return nil
	}
	out, ok := c.r.outputsFromRecord(ctx, prev.Outputs)
	if !ok {
		return nil
	}
	c.r.emit(Event{Task: c.name, Path: c.path, State: prev.State, Message: "finished before the resume", Outputs: prev.Outputs.Parameters})
	return &taskResult{state: prev.State, out: out}
}

// outputsFromRecord rebuilds outputs from the history, checking that every
// artifact still exists with its recorded size.
func (r *run) outputsFromRecord(ctx context.Context, rec OutputsRecord) (*outputs, bool) {
	out := newOutputs()
	for k, v := range rec.Parameters {
		out.params[k] = v
	}
	for name, arts := range rec.Artifacts {
		for _, a := range arts {
			info, err := r.opts.Store.Stat(ctx, a.URI)
			if err != nil || info.Size != a.Size {
				return nil, false
			}
			// A store that keeps the digest with the object (MinIO) tells
			// an object replaced behind mlpipe's back: a miss, not a hit
			// whose consumers would fail at staging run after run.
			if info.Digest != "" && a.Digest != "" && info.Digest != a.Digest {
				return nil, false
			}
			out.artifacts[name] = append(out.artifacts[name], &RuntimeArtifact{Name: name, URI: a.URI,
				Type: ArtifactType{SchemaTitle: a.Type, SchemaVersion: a.SchemaVersion}, Metadata: a.Metadata, Digest: a.Digest, Size: a.Size, Dir: a.Dir})
		}
	}
	return out, true
}

// cacheLookup returns the cached result, or nil on a miss.
func (c *containerTask) cacheLookup(ctx context.Context, key string) *taskResult {
	e, err := c.r.opts.History.LookupCache(ctx, key)
	if err != nil || e == nil {
		return nil
	}
	out, ok := c.r.outputsFromRecord(ctx, e.Outputs)
	if !ok {
		return nil
	}
	now := time.Now()
	c.rec.State = Cached
	c.rec.StartedAt, c.rec.FinishedAt = now, now
	c.rec.CachedFrom = e.RunID + "/" + e.TaskPath
	c.rec.Outputs = e.Outputs
	c.r.saveTask(c.rec)
	c.r.emit(Event{Task: c.name, Path: c.path, State: Cached, Message: "from " + c.rec.CachedFrom, Outputs: e.Outputs.Parameters})
	return &taskResult{state: Cached, out: out}
}

// attempts runs the task with its retry policy.
func (c *containerTask) attempts(ctx context.Context, lease GPULease) *taskResult {
	rp := c.t.GetRetryPolicy()
	maxAttempts := 1 + int(rp.GetMaxRetryCount())
	backoff := rp.GetBackoffDuration().AsDuration()
	factor := rp.GetBackoffFactor()
	if factor <= 0 {
		factor = 2
	}
	maxRetry := time.Hour
	if rp.GetBackoffMaxDuration() != nil {
		maxRetry = rp.GetBackoffMaxDuration().AsDuration()
	}
	first := 1
	if prev := c.r.prior[c.path]; prev != nil {
		first = prev.Attempts + 1
		if c.finishedMeanwhile(ctx, prev) {
			first, c.collectOnly = prev.Attempts, true
		}
	}
	if c.rec.StartedAt.IsZero() {
		c.rec.StartedAt = time.Now()
	}
	var retryStart time.Time
	var lastMsg string
	for i := 0; i < maxAttempts; i++ {
		attempt := first + i
		c.rec.Attempts = attempt
		o := c.attempt(ctx, attempt, lease)
		switch {
		case o.canceled:
			return c.finishWith(Canceled, nil, "cancelled", o.rec)
		case o.skipped:
			return c.finish(Skipped, nil, "not started: the run is failing (fail-fast)")
		case o.out != nil:
			return c.finishWith(Succeeded, o.out, "", o.rec)
		}
		lastMsg = o.msg
		if i == maxAttempts-1 {
			return c.finishWith(Failed, nil, lastMsg, o.rec)
		}
		c.r.saveAttempt(o.rec)
		delay := time.Duration(float64(backoff) * math.Pow(factor, float64(i)))
		if retryStart.IsZero() {
			retryStart = time.Now()
		}
		if time.Since(retryStart)+delay > maxRetry {
			lastMsg += " (retry window of " + maxRetry.String() + " exhausted)"
			break
		}
		c.r.emit(Event{Task: c.name, Path: c.path, State: Pending, Attempt: attempt, Message: fmt.Sprintf("attempt %d failed: %s; retrying in %s", attempt, lastMsg, delay)})
		if delay > 0 {
			timer := time.NewTimer(delay)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				return c.finish(Canceled, nil, "cancelled")
			}
		}
		if c.r.failing() && !c.exemptRetry() {
			break
		}
	}
	return c.finish(Failed, nil, lastMsg)
}

// exemptRetry: retries go on during fail-fast only for exit tasks.
func (c *containerTask) exemptRetry() bool {
	return c.t.GetTriggerPolicy().GetStrategy() == pb.PipelineTaskSpec_TriggerPolicy_ALL_UPSTREAM_TASKS_COMPLETED
}

// finish records the task's final state.
func (c *containerTask) finish(state State, out *outputs, msg string) *taskResult {
	return c.finishWith(state, out, msg, nil)
}

// finishWith records the final state together with the last attempt and
// the cache entry, in one write to the history.
func (c *containerTask) finishWith(state State, out *outputs, msg string, last *AttemptRecord) *taskResult {
	now := time.Now()
	if c.rec.StartedAt.IsZero() {
		c.rec.StartedAt = now
	}
	c.rec.FinishedAt = now
	c.rec.State = state
	c.rec.Error = msg
	if out != nil {
		c.rec.Outputs = outputsRecord(out)
	}
	if state == Failed {
		c.r.fail()
	}
	c.rec.Attempt, c.rec.Cache = last, nil
	if state == Succeeded && c.rec.CacheKey != "" && c.t.GetCachingOptions().GetEnableCache() {
		c.rec.Cache = &CacheEntry{Key: c.rec.CacheKey, RunID: c.r.runID, TaskPath: c.path, Outputs: c.rec.Outputs, CreatedAt: now}
	}
	c.r.saveTask(c.rec)
	c.rec.Attempt, c.rec.Cache = nil, nil
	ev := Event{Task: c.name, Path: c.path, State: state, Attempt: c.rec.Attempts, Message: msg, Duration: c.rec.FinishedAt.Sub(c.rec.StartedAt), GPUs: c.rec.GPUs}
	if out != nil {
		ev.Outputs = c.rec.Outputs.Parameters
	}
	c.r.emit(ev)
	return &taskResult{state: state, out: out, message: msg}
}

func outputsRecord(out *outputs) OutputsRecord {
	rec := OutputsRecord{Parameters: map[string]any{}, Artifacts: map[string][]ArtifactRecord{}}
	for k, v := range out.params {
		rec.Parameters[k] = v
	}
	for k, arts := range out.artifacts {
		for _, a := range arts {
			rec.Artifacts[k] = append(rec.Artifacts[k], artifactRecord(k, a))
		}
	}
	return rec
}

func artifactRecord(name string, a *RuntimeArtifact) ArtifactRecord {
	md := a.Metadata
	if md == nil {
		md = map[string]any{}
	}
	return ArtifactRecord{Name: name, URI: a.URI, Type: a.Type.SchemaTitle, SchemaVersion: a.Type.SchemaVersion, Digest: a.Digest, Size: a.Size, Dir: a.Dir, Metadata: md}
}

func inputRecords(in *resolvedInputs) map[string][]ArtifactRecord {
	out := map[string][]ArtifactRecord{}
	for k, arts := range in.artifacts {
		for _, a := range arts {
			out[k] = append(out[k], artifactRecord(k, a))
		}
	}
	return out
}

// execImporter produces the importer's artifact without running anything
// (docs/kfp-semantics.md §3.6).
func (r *run) execImporter(ctx context.Context, d *dagRun, key string, t *pb.PipelineTaskSpec, comp *pb.ComponentSpec, im *kfpir.Importer, in *resolvedInputs) *taskResult {
	path := d.taskPath(key)
	name := DisplayName(path)
	now := time.Now()
	rec := &TaskRecord{RunID: r.runID, Path: path, Name: name, Component: t.GetComponentRef().GetName(), Kind: "importer", StartedAt: now, Attempts: 1}
	fail := func(msg string) *taskResult {
		rec.State, rec.Error, rec.FinishedAt = Failed, msg, time.Now()
		r.fail()
		r.saveTask(rec)
		r.emit(Event{Task: name, Path: path, State: Failed, Message: msg})
		return &taskResult{state: Failed, message: msg}
	}
	uri := im.URIConstant
	if im.URIParameter != "" {
		v, ok := in.params[im.URIParameter]
		if !ok {
			return fail(fmt.Sprintf("importer input %q has no value", im.URIParameter))
		}
		uri = FormatValue(v)
	}
	if uri == "" {
		return fail("importer artifact URI is empty")
	}
	pc := &placeholderContext{in: &ExecutorInput{Inputs: ExecInputs{ParameterValues: withDefaults(comp, in.params)}}, job: r.jobInfo(path, key)}
	md, err := resolveMetadata(pc, im.Metadata, 0)
	if err != nil {
		return fail(err.Error())
	}
	mdMap, _ := md.(map[string]any)
	if mdMap == nil {
		mdMap = map[string]any{}
	}
	outKey := "artifact"
	for k := range comp.GetOutputDefinitions().GetArtifacts() {
		outKey = k
	}
	a := &RuntimeArtifact{Name: outKey, URI: uri, Type: ArtifactType{SchemaTitle: im.TypeSchema, SchemaVersion: im.SchemaVersion}, Metadata: mdMap}
	if info, err := r.opts.Store.Stat(ctx, uri); err == nil {
		a.Size, a.Dir, a.Digest = info.Size, info.Dir, info.Digest
	} else if strings.HasPrefix(uri, "/") {
		if _, serr := os.Stat(uri); serr != nil {
			return fail(fmt.Sprintf("imported artifact %s does not exist", uri))
		}
	}
	out := newOutputs()
	out.artifacts[outKey] = []*RuntimeArtifact{a}
	rec.State, rec.FinishedAt, rec.Outputs = Succeeded, time.Now(), outputsRecord(out)
	r.saveTask(rec)
	r.emit(Event{Task: name, Path: path, State: Succeeded, Message: "imported " + uri})
	return &taskResult{state: Succeeded, out: out}
}

func resolveMetadata(pc *placeholderContext, v any, depth int) (any, error) {
	if depth > 32 {
		return nil, errors.New("importer metadata nested too deeply")
	}
	switch x := v.(type) {
	case string:
		return pc.substitute(x)
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			nk, err := pc.substitute(k)
			if err != nil {
				return nil, err
			}
			nv, err := resolveMetadata(pc, e, depth+1)
			if err != nil {
				return nil, err
			}
			out[nk] = nv
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			nv, err := resolveMetadata(pc, e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = nv
		}
		return out, nil
	}
	return v, nil
}
