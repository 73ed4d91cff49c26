package runner

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/mlpipe/mlpipe/kfpir"
)

// outcome is how one attempt ended.
type outcome struct {
	out      *outputs // on success
	msg      string   // why it failed
	canceled bool     // ctx ended it
	skipped  bool     // not started: fail-fast
	rec      *AttemptRecord
}

// attempt runs one attempt, phase by phase: stage in (task directory,
// executor input, input artifacts), prepare (placeholders, argv, log,
// environment), acquire (a slot, CPU and memory; GPUs were acquired for
// the task), execute, collect. The slot is held only while the user's
// code runs; preparing and collecting happen outside it.
func (c *containerTask) attempt(ctx context.Context, n int, lease GPULease) (o outcome) {
	a := c.newAttempt(n, lease)
	o.rec = a.rec
	defer a.finish(&o)
	fail := func(msg string) outcome { o.msg = msg; return o }
	cancelled := func() outcome { o.canceled = true; o.msg = "cancelled"; return o }
	if err := a.stageIn(ctx); err != nil {
		if ctx.Err() != nil && !errors.Is(err, errTaskDir) {
			return cancelled()
		}
		return fail(err.Error())
	}
	if err := a.prepare(); err != nil {
		return fail(err.Error())
	}
	defer a.closeOutput()
	release, err := a.acquire(ctx)
	switch {
	case err != nil:
		return cancelled()
	case release == nil:
		o.skipped = true // fail-fast: not started
		return o
	}
	res, runErr := a.execute(ctx)
	release()
	switch {
	case ctx.Err() != nil:
		return cancelled()
	case runErr != nil:
		fmt.Fprintf(a.stderr, "mlpipe: %v\n", runErr)
		return fail(runErr.Error())
	case res.ExitCode != 0 || res.OOMKilled:
		return fail(a.exitMessage(res))
	}
	out, err := a.collect(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return cancelled()
		}
		fmt.Fprintf(a.stderr, "mlpipe: %v\n", err)
		return fail(err.Error())
	}
	o.out = out
	return o
}

// executorInput builds the ExecutorInput of an attempt (§3.2), staging
// input artifacts from a remote store first.
func (c *containerTask) executorInput(ctx context.Context, addPhase func(string, time.Time, time.Time)) (*ExecutorInput, error) {
	r := c.r
	ei := &ExecutorInput{}
	ei.Inputs.ParameterValues = withDefaults(c.comp, c.in.params)
	if len(c.in.artifacts) > 0 {
		ei.Inputs.Artifacts = map[string]ArtifactList{}
	}
	start := time.Now()
	for _, name := range slices.Sorted(maps.Keys(c.in.artifacts)) {
		var list []*RuntimeArtifact
		for i, a := range c.in.artifacts[name] {
			cp := *a
			cp.Name = name
			if cp.Metadata == nil {
				cp.Metadata = map[string]any{}
			}
			if r.opts.Store.Remote() && isRemoteURI(cp.URI) {
				local, err := namedPath(c.dir, "artifacts/in/", name, strconv.Itoa(i))
				if err != nil {
					return nil, err
				}
				cp.local = local
				if err := noLinksBelow(c.dir, cp.local); err != nil { // left by an earlier attempt's container
					return nil, err
				}
				if _, err := r.opts.Store.Get(ctx, cp.URI, cp.local, cp.Digest); err != nil {
					return nil, r.stageInError(ctx, name, cp.URI, err)
				}
				if !r.opts.Executor.Properties().Isolated {
					cp.CustomPath = cp.local
				}
			} else {
				cp.local = localPathOf(cp.URI)
				if !r.opts.Executor.Properties().Isolated {
					if err := r.checkLocalInput(ctx, name, cp.local, cp.Digest); err != nil {
						return nil, err
					}
				}
			}
			list = append(list, &cp)
		}
		ei.Inputs.Artifacts[name] = ArtifactList{Artifacts: list}
	}
	if r.opts.Store.Remote() && len(c.in.artifacts) > 0 {
		addPhase("stage_in", start, time.Now())
	}
	// The executor output file lies in the task's output root, as on KFP:
	// the SDK's dsl.get_uri(suffix) is its directory plus the suffix.
	hostRoot, stepRoot := c.outRoot(), c.stepOutRoot()
	ei.Outputs.OutputFile = path.Join(stepRoot, executorOutputName)
	ei.Outputs.local = filepath.Join(hostRoot, executorOutputName)
	if c.needsDir() && c.usesOutRoot() {
		if err := c.noLinksToOutRoot(); err != nil { // left by an earlier attempt
			return nil, err
		}
		if !c.collectOnly {
			_ = os.Remove(ei.Outputs.local)
		}
		if err := os.MkdirAll(hostRoot, 0o755); err != nil {
			return nil, err
		}
	}
	if ps := c.comp.GetOutputDefinitions().GetParameters(); len(ps) > 0 {
		ei.Outputs.Parameters = map[string]OutputParameter{}
		for name := range ps {
			f, err := namedPath(c.dir, "param.", name)
			if err != nil {
				return nil, err
			}
			if !c.collectOnly {
				_ = os.Remove(f) // each attempt starts from nothing
			}
			ei.Outputs.Parameters[name] = OutputParameter{OutputFile: f}
		}
	}
	if as := c.comp.GetOutputDefinitions().GetArtifacts(); len(as) > 0 {
		ei.Outputs.Artifacts = map[string]ArtifactList{}
		for _, name := range slices.Sorted(maps.Keys(as)) {
			spec := as[name]
			if !kfpir.SafeName(name) {
				return nil, fmt.Errorf("output artifact name %q is not a safe name", name)
			}
			uri := c.taskRoot() + "/" + name
			a := &RuntimeArtifact{Name: name, URI: uri, Metadata: map[string]any{},
				Type: ArtifactType{SchemaTitle: kfpir.SchemaTitle(spec.GetArtifactType()), SchemaVersion: spec.GetArtifactType().GetSchemaVersion()}}
			if md := spec.GetMetadata(); md != nil {
				a.Metadata = md.AsMap()
			}
			if r.opts.Store.Remote() {
				local, err := namedPath(c.dir, "artifacts/out/", name)
				if err != nil {
					return nil, err
				}
				a.local = local
				if !r.opts.Executor.Properties().Isolated {
					a.CustomPath = a.local
				}
			} else {
				a.local = localPathOf(uri)
			}
			if strings.HasPrefix(a.local, c.dir+string(filepath.Separator)) {
				if err := noLinksBelow(c.dir, a.local); err != nil { // left by an earlier attempt's container
					return nil, err
				}
			}
			// Each attempt starts from nothing (but the one to collect).
			if !c.collectOnly {
				if err := os.RemoveAll(a.local); err != nil {
					return nil, err
				}
			}
			if err := os.MkdirAll(filepath.Dir(a.local), 0o755); err != nil {
				return nil, err
			}
			ei.Outputs.Artifacts[name] = ArtifactList{Artifacts: []*RuntimeArtifact{a}}
		}
	}
	return ei, nil
}

// executorOutputName is the name of the executor output file in the
// task's output root (kfp.local's name).
const executorOutputName = "executor_output.json"

// outRoot is the host directory of the task's output root, where its
// output artifacts and the executor output file are written: the local
// path of the task root with the local store, the staging directory its
// outputs are uploaded from with a remote store.
func (c *containerTask) outRoot() string {
	if c.r.opts.Store.Remote() {
		return filepath.Join(c.dir, "artifacts", "out")
	}
	return localPathOf(c.taskRoot())
}

// stepOutRoot is the task's output root as the step sees it: the host
// directory, or for a container with a remote store the KFP local path of
// the task root (/minio/<bucket>/..., mounted from outRoot).
func (c *containerTask) stepOutRoot() string {
	if c.r.opts.Store.Remote() && c.r.opts.Executor.Properties().Isolated {
		return KFPLocalPath(c.taskRoot())
	}
	return c.outRoot()
}

// usesOutRoot reports whether the step may write in its output root: it
// has output artifacts, or it can learn where the executor output goes.
func (c *containerTask) usesOutRoot() bool {
	if len(c.comp.GetOutputDefinitions().GetArtifacts()) > 0 {
		return true
	}
	for _, a := range append(append([]string(nil), c.ct.Command...), c.ct.Args...) {
		if strings.Contains(a, "{{$}}") || strings.Contains(a, "output_file") || strings.Contains(a, "outputMetadataUri") {
			return true
		}
	}
	return false
}

// noLinksToOutRoot fails when a directory on the way to the output root
// (below the task directory, or below the local store's root) is a
// symbolic link, which an earlier attempt's step may have left.
func (c *containerTask) noLinksToOutRoot() error {
	if c.r.opts.Store.Remote() {
		return noLinksBelow(c.dir, c.outRoot())
	}
	return noLinksBelow(localPathOf(c.r.opts.Store.Root()), c.outRoot())
}

// needsDir reports whether the task directory must exist before the task
// runs: it has outputs, reads {{$}} or the executor output path, stages
// artifacts, or runs in a container that mounts it.
func (c *containerTask) needsDir() bool {
	od := c.comp.GetOutputDefinitions()
	if len(od.GetParameters())+len(od.GetArtifacts()) > 0 || c.r.opts.Store.Remote() || c.r.opts.Executor.Properties().Isolated {
		return true
	}
	for _, a := range append(append([]string(nil), c.ct.Command...), c.ct.Args...) {
		if strings.Contains(a, "{{$}}") || strings.Contains(a, "output_file") || strings.Contains(a, "outputMetadataUri") || strings.Contains(a, "workspace_path") {
			return true
		}
	}
	return false
}

// workDir is where the task's process starts.
func (c *containerTask) workDir(haveDir bool) string {
	if haveDir {
		return c.dir
	}
	return c.r.runDir
}

// lazyFile creates its file (and directory) on the first write.
type lazyFile struct {
	mu    sync.Mutex
	path  string
	f     *os.File
	err   error
	limit int64 // bytes kept; what comes after is counted, not written
	n     int64 // bytes written
	drop  int64 // bytes dropped over the limit
}

func (l *lazyFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil && l.err == nil {
		if l.err = os.MkdirAll(filepath.Dir(l.path), 0o755); l.err == nil {
			l.f, l.err = createNoFollow(l.path)
		}
	}
	if l.err != nil {
		return 0, l.err
	}
	if l.limit > 0 && l.n+int64(len(p)) > l.limit {
		keep := max(l.limit-l.n, 0)
		if keep > 0 {
			if _, err := l.f.Write(p[:keep]); err != nil {
				return 0, err
			}
			l.n += keep
			if _, err := fmt.Fprintf(l.f, "\n[mlpipe: log capped at %s (limits.log); the rest of this attempt's output is not kept]\n", kfpir.FormatBytes(float64(l.limit))); err != nil {
				return 0, err
			}
		}
		l.drop += int64(len(p)) - keep
		return len(p), nil
	}
	n, err := l.f.Write(p)
	l.n += int64(n)
	return n, err
}

// Close closes the file if it was created, noting how much was dropped.
func (l *lazyFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		if l.drop > 0 {
			fmt.Fprintf(l.f, "[mlpipe: %d bytes of output dropped]\n", l.drop)
		}
		return l.f.Close()
	}
	return nil
}

// mounts lists what a container needs: the task directory, the input
// artifacts (read-only) and the output artifacts' directory.
func (c *containerTask) mounts(ei *ExecutorInput, kfpPaths bool) []Mount {
	ms := []Mount{{HostPath: c.dir, ContainerPath: c.dir}}
	seen := map[string]bool{c.dir: true}
	add := func(m Mount) {
		if !seen[m.ContainerPath] {
			seen[m.ContainerPath] = true
			ms = append(ms, m)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(ei.Inputs.Artifacts)) {
		for _, a := range ei.Inputs.Artifacts[name].Artifacts {
			if a.local == "" {
				continue
			}
			if _, err := os.Stat(a.local); err != nil {
				continue
			}
			cp := a.local
			if kfpPaths {
				cp = KFPLocalPath(a.URI)
			}
			add(Mount{HostPath: a.local, ContainerPath: cp, ReadOnly: true})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(ei.Outputs.Artifacts)) {
		for _, a := range ei.Outputs.Artifacts[name].Artifacts {
			host := filepath.Dir(a.local)
			cp := host
			if kfpPaths {
				cp = path.Dir(KFPLocalPath(a.URI))
			}
			add(Mount{HostPath: host, ContainerPath: cp})
		}
	}
	// The output root, where the executor output file goes (and what
	// dsl.get_uri names), even for a task without output artifacts.
	if c.usesOutRoot() {
		if _, err := os.Stat(c.outRoot()); err == nil {
			add(Mount{HostPath: c.outRoot(), ContainerPath: c.stepOutRoot()})
		}
	}
	return ms
}

func (c *containerTask) cpuLimit() float64 { return cmp.Or(c.cpuLim, c.cpu) }

func (c *containerTask) memLimit() int64 { return cmp.Or(c.memLim, c.mem) }

// executorOutput is the file a component may write (§3.3).
type executorOutput struct {
	ParameterValues map[string]any `json:"parameterValues"`
	Parameters      map[string]struct {
		StringValue *string  `json:"stringValue"`
		IntValue    *float64 `json:"intValue"`
		DoubleValue *float64 `json:"doubleValue"`
	} `json:"parameters"`
	Artifacts map[string]struct {
		Artifacts []outputArtifact `json:"artifacts"`
	} `json:"artifacts"`
}

// outputArtifact is an artifact of the executor output file.
type outputArtifact struct {
	URI          string         `json:"uri"`
	Metadata     map[string]any `json:"metadata"`
	CustomPath   string         `json:"customPath"`
	CustomPathSC string         `json:"custom_path"`
}

// collect gathers the outputs of a successful attempt as the backend does:
// the executor-output file wins, then the per-parameter files; every
// declared output artifact is collected, merged with the file (§3.3).
func (c *containerTask) collect(ctx context.Context, ei *ExecutorInput, haveDir bool) (*outputs, error) {
	var eo executorOutput
	// Without a task directory the step was never told where the executor
	// output goes (needsDir): there is nothing to read.
	if haveDir && ei.Outputs.local != "" {
		if err := c.noLinksToOutRoot(); err != nil {
			return nil, err
		}
		b, err := readFileNoFollow(ei.Outputs.local, c.r.executorOutputLimit())
		switch {
		case err == nil:
			if err := json.NewDecoder(bytes.NewReader(b)).Decode(&eo); err != nil {
				return nil, fmt.Errorf("executor output %s is not valid JSON: %v", ei.Outputs.OutputFile, err)
			}
		case !errors.Is(err, os.ErrNotExist):
			return nil, err
		}
	}
	out := newOutputs()
	for _, name := range slices.Sorted(maps.Keys(ei.Outputs.Parameters)) {
		typ := c.comp.GetOutputDefinitions().GetParameters()[name].GetParameterType()
		if v, ok := eo.ParameterValues[name]; ok {
			if b, _ := json.Marshal(v); int64(len(b)) > c.r.paramLimit() {
				return nil, fmt.Errorf("output parameter %s: %s in the executor output, over the limit of %s (limits.output_parameter)",
					name, kfpir.FormatBytes(float64(len(b))), kfpir.FormatBytes(float64(c.r.paramLimit())))
			}
			cv, err := coerceParam(typ, v)
			if err != nil {
				return nil, fmt.Errorf("output parameter %s: %v", name, err)
			}
			out.params[name] = cv
			continue
		}
		if p, ok := eo.Parameters[name]; ok {
			var v any
			switch {
			case p.StringValue != nil:
				v = *p.StringValue
			case p.IntValue != nil:
				v = *p.IntValue
			case p.DoubleValue != nil:
				v = *p.DoubleValue
			}
			if v != nil {
				cv, err := coerceParam(typ, v)
				if err != nil {
					return nil, fmt.Errorf("output parameter %s: %v", name, err)
				}
				out.params[name] = cv
				continue
			}
		}
		b, err := readFileNoFollow(ei.Outputs.Parameters[name].OutputFile, c.r.paramLimit())
		if err != nil {
			var tl *TooLargeError
			if errors.As(err, &tl) {
				return nil, fmt.Errorf("output parameter %s: %v (limits.output_parameter)", name, err)
			}
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("declared output parameter %q was not written (expected %s or an entry in the executor output file)", name, ei.Outputs.Parameters[name].OutputFile)
			}
			return nil, err
		}
		v, err := ParseOutputFile(typ, string(b))
		if err != nil {
			return nil, fmt.Errorf("output parameter %s: %v", name, err)
		}
		out.params[name] = v
	}
	var created []string // published outside the run by this attempt
	for _, name := range slices.Sorted(maps.Keys(ei.Outputs.Artifacts)) {
		var o *outputArtifact
		if ov, ok := eo.Artifacts[name]; ok && len(ov.Artifacts) > 0 {
			o = &ov.Artifacts[0]
		}
		a, err := c.collectArtifact(ctx, ei, name, o, &created)
		if err != nil {
			c.unpublish(created)
			return nil, fmt.Errorf("output artifact %s: %w", name, err)
		}
		out.artifacts[name] = []*RuntimeArtifact{a}
	}
	return out, nil
}

// ParseOutputFile converts the text of an output parameter file by type,
// as the backend does (§3.3): strings verbatim, numbers and booleans
// trimmed, lists and structs as JSON.
func ParseOutputFile(t pb.ParameterType_ParameterTypeEnum, text string) (any, error) {
	s := strings.TrimSpace(text)
	switch t {
	case pb.ParameterType_STRING:
		return text, nil
	case pb.ParameterType_NUMBER_INTEGER:
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			f, ferr := strconv.ParseFloat(s, 64)
			if ferr != nil || f != float64(int64(f)) {
				return nil, fmt.Errorf("%q is not an integer", clip(s))
			}
			i = int64(f)
		}
		return float64(i), nil
	case pb.ParameterType_NUMBER_DOUBLE:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", clip(s))
		}
		return f, nil
	case pb.ParameterType_BOOLEAN:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a boolean", clip(s))
		}
		return b, nil
	case pb.ParameterType_LIST, pb.ParameterType_STRUCT:
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, fmt.Errorf("not valid JSON: %v", err)
		}
		return kfpir.CheckValue(t, v)
	}
	return text, nil
}

func clip(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

func lastLines(path string, n int) string {
	b, err := tailNoFollow(path, 4096)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, " | "))
}

// KFPLocalPath maps an artifact URI to the local path KFP components use
// for it (docs/kfp-semantics.md §3.4).
func KFPLocalPath(uri string) string {
	for _, m := range []struct{ prefix, local string }{{"gs://", "/gcs/"}, {"minio://", "/minio/"}, {"s3://", "/s3/"}} {
		if strings.HasPrefix(uri, m.prefix) {
			return m.local + strings.TrimPrefix(uri, m.prefix)
		}
	}
	return localPathOf(uri)
}

func localPathOf(uri string) string {
	if rest, ok := strings.CutPrefix(uri, "file://"); ok {
		return rest
	}
	return uri
}

func isRemoteURI(uri string) bool {
	return strings.HasPrefix(uri, "minio://") || strings.HasPrefix(uri, "s3://") || strings.HasPrefix(uri, "gs://")
}

// stageInError explains a failed stage-in. An input whose content no longer
// matches the digest recorded for it was changed outside mlpipe: the cache
// entries that point at it are dropped, so that the next run re-runs its
// producer instead of failing here again.
func (r *run) stageInError(ctx context.Context, name, uri string, err error) error {
	if !errors.Is(err, ErrDigestMismatch) {
		return fmt.Errorf("stage input %s from %s: %w", name, uri, err)
	}
	msg := fmt.Sprintf("stage input %s from %s: %v: it was changed outside mlpipe", name, uri, err)
	if cd, ok := r.opts.History.(CacheDropper); ok {
		if n, derr := cd.DropCacheFor(context.WithoutCancel(ctx), uri); derr == nil && n > 0 {
			msg += fmt.Sprintf("; %d cache entr%s pointing at it dropped: the next run re-runs its producer", n, map[bool]string{true: "y", false: "ies"}[n == 1])
		}
	}
	return fmt.Errorf("%s: %w", msg, ErrDigestMismatch)
}
