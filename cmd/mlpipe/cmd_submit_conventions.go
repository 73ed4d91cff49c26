package main

// What kfp.Client users expect of a KFP client beyond the REST calls: the
// namespace of ~/.config/kfp/context.json, the experiment override
// variable, caching switched off for a run, a server still starting after
// a port-forward, pipeline packages as .zip or .tar.gz.

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mlpipe/mlpipe/compiler"
	"github.com/mlpipe/mlpipe/internal/diag"
	"github.com/mlpipe/mlpipe/internal/termsafe"
	"github.com/mlpipe/mlpipe/internal/yamlnode"
	"github.com/mlpipe/mlpipe/kfp"
	"github.com/mlpipe/mlpipe/kfpir"
)

// kfpContextNamespace is the namespace kfp.Client keeps in
// ~/.config/kfp/context.json (written by `kfp` and by Kubeflow notebooks),
// or "".
func kfpContextNamespace() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(home, ".config", "kfp", "context.json"))
	if err != nil || len(b) > 1<<20 {
		return ""
	}
	var ctx struct {
		Namespace string `json:"namespace"`
	}
	if json.Unmarshal(b, &ctx) != nil {
		return ""
	}
	return ctx.Namespace
}

// experimentName applies KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME, which wins
// over the configured or given name, as in kfp.Client.
func experimentName(configured string) string {
	if o := os.Getenv("KF_PIPELINES_OVERRIDE_EXPERIMENT_NAME"); o != "" {
		return o
	}
	return configured
}

// disableCaching sets cachingOptions.enableCache to false on every task of
// the spec (root and component DAGs), as kfp.Client's enable_caching=False.
func disableCaching(spec map[string]any) {
	dags := []map[string]any{}
	if root, ok := spec["root"].(map[string]any); ok {
		dags = append(dags, root)
	}
	if comps, ok := spec["components"].(map[string]any); ok {
		for _, c := range comps {
			if cm, ok := c.(map[string]any); ok {
				dags = append(dags, cm)
			}
		}
	}
	for _, c := range dags {
		dag, _ := c["dag"].(map[string]any)
		tasks, _ := dag["tasks"].(map[string]any)
		for _, t := range tasks {
			if tm, ok := t.(map[string]any); ok {
				co, _ := tm["cachingOptions"].(map[string]any)
				if co == nil {
					co = map[string]any{}
				}
				co["enableCache"] = false
				tm["cachingOptions"] = co
			}
		}
	}
}

// waitForServer calls healthz until the server answers, retrying while it
// is unreachable, answers 5xx or reports that it is not ready (the API
// server is often still starting after a port-forward), for up to limit.
func waitForServer(ctx context.Context, c *kfp.Client, limit time.Duration, say func(string)) (*kfp.Health, error) {
	deadline := time.Now().Add(limit)
	delay := 250 * time.Millisecond
	told := false
	for {
		h, err := c.Health(ctx)
		if err == nil || !startingUp(err) || time.Now().Add(delay).After(deadline) {
			return h, err
		}
		if !told {
			say(fmt.Sprintf("waiting up to %s for KFP at %s: %v", limit, c.Host(), err))
			told = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 4*time.Second)
	}
}

// startingUp says whether err looks like a server that is not up yet: a
// refused or reset connection, a timeout, a 5xx, a UI whose API server is
// not ready. A certificate, an address that does not resolve or an HTTP
// error of the client's making are final.
func startingUp(err error) bool {
	if errors.Is(err, kfp.ErrUnhealthy) {
		return true
	}
	var ne *kfp.NetworkError
	if errors.As(err, &ne) {
		var te interface{ Timeout() bool }
		return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) ||
			errors.Is(err, io.ErrUnexpectedEOF) || (errors.As(err, &te) && te.Timeout())
	}
	return kfp.IsTransient(err)
}

// openSubmitSource opens what submit sends: a pipeline.yaml (compiled), an
// IR file, or a pipeline package (.zip, .tar.gz, .tgz) holding one IR file.
func openSubmitSource(path string) (*kfpir.IR, error) {
	lower := strings.ToLower(path)
	switch {
	case strings.HasSuffix(lower, ".zip"), strings.HasSuffix(lower, ".tar.gz"), strings.HasSuffix(lower, ".tgz"):
	default:
		return compiler.Open(path)
	}
	name, src, err := readPackage(path)
	if err != nil {
		return nil, err
	}
	ir, err := kfpir.LoadIRBytes(path+"!"+name, src)
	if err != nil {
		return nil, err
	}
	return ir, kfpir.ValidateIR(ir)
}

// maxUnpacked bounds what a .tar.gz package may expand to.
const maxUnpacked = 256 << 20

// readPackage returns the only .yaml, .yml or .json file of a package, as
// kfp.Client does; anything else is the user's mistake (exit code 2).
func readPackage(path string) (string, []byte, error) {
	bad := func(format string, args ...any) error { return diag.Errorf(path, format, args...) }
	f, err := os.Open(path)
	if err != nil {
		return "", nil, bad("cannot open: %v", errors.Unwrap(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return "", nil, bad("is not a regular file")
	}
	if st.Size() > kfp.MaxUploadSize {
		return "", nil, bad("is %d bytes; KFP accepts packages of at most %d MiB", st.Size(), kfp.MaxUploadSize>>20)
	}
	var name string
	var src []byte
	take := func(n string, size int64, r io.Reader) error {
		ext := strings.ToLower(filepath.Ext(n))
		if ext != ".yaml" && ext != ".yml" && ext != ".json" {
			return nil
		}
		if name != "" {
			return bad("holds several pipeline files (%s, %s); a package holds one", name, n)
		}
		if size > yamlnode.MaxBytes {
			return bad("%s is %d bytes, larger than the %d-byte limit", n, size, yamlnode.MaxBytes)
		}
		b, err := io.ReadAll(io.LimitReader(r, yamlnode.MaxBytes+1))
		if err != nil {
			return bad("cannot read %s: %v", n, err)
		}
		if len(b) > yamlnode.MaxBytes {
			return bad("%s is larger than the %d-byte limit", n, yamlnode.MaxBytes)
		}
		name, src = n, b
		return nil
	}
	if strings.HasSuffix(strings.ToLower(path), ".zip") {
		zr, err := zip.NewReader(f, st.Size())
		if err != nil {
			return "", nil, bad("is not a zip archive: %v", err)
		}
		for _, zf := range zr.File {
			if !zf.Mode().IsRegular() {
				continue
			}
			rc, err := zf.Open()
			if err != nil {
				return "", nil, bad("cannot read %s: %v", zf.Name, err)
			}
			err = take(zf.Name, int64(zf.UncompressedSize64), rc)
			rc.Close()
			if err != nil {
				return "", nil, err
			}
		}
	} else {
		gz, err := gzip.NewReader(f)
		if err != nil {
			return "", nil, bad("is not a gzip archive: %v", err)
		}
		// A small archive can expand without end: what is read through
		// (members skipped included) is bounded.
		unpacked := &io.LimitedReader{R: gz, N: maxUnpacked + 1}
		tr := tar.NewReader(unpacked)
		for {
			h, err := tr.Next()
			if unpacked.N <= 0 {
				return "", nil, bad("expands to more than %d MiB: not a pipeline package", maxUnpacked>>20)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return "", nil, bad("is not a tar.gz archive: %v", err)
			}
			if h.Typeflag != tar.TypeReg {
				continue
			}
			if err := take(h.Name, h.Size, tr); err != nil {
				return "", nil, err
			}
		}
	}
	if name == "" {
		return "", nil, bad("holds no pipeline file (.yaml, .yml or .json)")
	}
	return name, bytes.Clone(src), nil
}

// remoteEvents prints what submit --wait sees of a run on the cluster: the
// run's state and each task's as the server reports them (task_details of
// GetRun), when they change; as text or, with --output json, one JSON
// event per line like mlpipe run's.
type remoteEvents struct {
	a     *app
	json  bool
	runID string
	state kfp.RuntimeState            // the run's last state shown
	seen  map[string]kfp.RuntimeState // task id → last state shown
}

// poll shows what changed in an answer: the run's state first, its tasks
// after, except at the end, where the tasks' last states come before the
// run's.
func (e *remoteEvents) poll(r *kfp.Run) {
	if r.State.Terminal() {
		e.tasks(r)
		e.run(r)
		return
	}
	e.run(r)
	e.tasks(r)
}

func newRemoteEvents(a *app, asJSON bool, runID string) *remoteEvents {
	return &remoteEvents{a: a, json: asJSON, runID: runID, seen: map[string]kfp.RuntimeState{}}
}

func (e *remoteEvents) emit(ev map[string]any, text string) {
	if e.json {
		ev["time"] = time.Now().UTC().Format(time.RFC3339Nano)
		ev["run_id"] = e.runID
		b, _ := json.Marshal(ev)
		fmt.Fprintln(e.a.stdout, string(b))
		return
	}
	fmt.Fprintln(e.a.stdout, termsafe.Escape(text))
}

func (e *remoteEvents) submitted(experiment, url string) {
	if e.json {
		e.emit(map[string]any{"event": "submitted", "experiment": experiment, "url": url}, "")
		return
	}
	fmt.Fprintf(e.a.stdout, "run %s submitted to experiment %s\n%s\n", e.runID, termsafe.Escape(experiment), url)
}

// run shows the run's state when it changes.
func (e *remoteEvents) run(r *kfp.Run) {
	if r.State == kfp.StateUnspecified || r.State == e.state {
		return
	}
	e.state = r.State
	e.emit(map[string]any{"state": r.State}, fmt.Sprintf("%s run %s %s", time.Now().Format("15:04:05"), r.RunID, r.State))
}

// tasks shows each step whose state changed since the last answer. Argo's
// bookkeeping nodes (the workflow itself, drivers) are left out.
func (e *remoteEvents) tasks(r *kfp.Run) {
	if r.RunDetails == nil {
		return
	}
	for _, t := range r.RunDetails.TaskDetails {
		if t.ParentTaskID == "" || t.DisplayName == "" || strings.HasSuffix(t.DisplayName, "-driver") || t.State == kfp.StateUnspecified {
			continue
		}
		if e.seen[t.TaskID] == t.State {
			continue
		}
		e.seen[t.TaskID] = t.State
		msg := ""
		if t.Error != nil {
			msg = t.Error.Message
		}
		text := fmt.Sprintf("%s task %s %s", time.Now().Format("15:04:05"), t.DisplayName, t.State)
		if msg != "" {
			text += ": " + msg
		}
		ev := map[string]any{"task": t.DisplayName, "state": t.State}
		if msg != "" {
			ev["message"] = msg
		}
		e.emit(ev, text)
	}
}
