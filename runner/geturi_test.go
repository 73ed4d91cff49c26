package runner_test

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mlpipe/mlpipe/runner"
	"github.com/mlpipe/mlpipe/storage"
	"github.com/mlpipe/mlpipe/storage/storagetest"
)

// The SDK's dsl.get_uri(suffix) is dirname(outputs.outputFile) + "/" +
// suffix, with /gcs/, /minio/ and /s3/ mapped back to URIs; KFP gives
// outputs.outputFile a task root under the pipeline root, and its launcher
// takes a returned artifact's content from the local path of its URI.

// getURI is what dsl.get_uri(suffix) returns in the step.
func getURI(w *taskIO, suffix string) string {
	p := path.Join(path.Dir(w.in.Outputs.OutputFile), suffix)
	for _, m := range []struct{ local, remote string }{{"/gcs/", "gs://"}, {"/minio/", "minio://"}, {"/s3/", "s3://"}} {
		if rest, ok := strings.CutPrefix(p, m.local); ok {
			return m.remote + rest
		}
	}
	return p
}

// hostPath maps a path as the step sees it to the host: through the
// task's mounts for a container, else unchanged.
func hostPath(w *taskIO, p string) string {
	if w.task.Mounts == nil {
		return p
	}
	best := ""
	host := p
	for _, m := range w.task.Mounts {
		if (p == m.ContainerPath || strings.HasPrefix(p, m.ContainerPath+"/")) && len(m.ContainerPath) > len(best) {
			best = m.ContainerPath
			host = m.HostPath + strings.TrimPrefix(p, m.ContainerPath)
		}
	}
	return host
}

// stepWrite writes a file at a path as the step sees it.
func stepWrite(w *taskIO, p, content string) {
	h := hostPath(w, p)
	if err := os.MkdirAll(filepath.Dir(h), 0o755); err != nil {
		w.t.Error(err)
	}
	if err := os.WriteFile(h, []byte(content), 0o644); err != nil {
		w.t.Error(err)
	}
}

// localOf is the local path of a URI as the SDK maps it.
func localOf(uri string) string {
	for _, m := range []struct{ remote, local string }{{"gs://", "/gcs/"}, {"minio://", "/minio/"}, {"s3://", "/s3/"}} {
		if rest, ok := strings.CutPrefix(uri, m.remote); ok {
			return m.local + rest
		}
	}
	return uri
}

// stepRead reads an input artifact as the step would (customPath, else
// the URI's local path, through the mounts).
func stepRead(w *taskIO, name string) string {
	a := w.in.Inputs.Artifacts[name].Artifacts[0]
	p := a.CustomPath
	if p == "" {
		p = localOf(a.URI)
	}
	b, err := os.ReadFile(hostPath(w, p))
	if err != nil {
		w.t.Error(err)
	}
	return string(b)
}

// getURIBehaviors: produce returns an artifact built with
// dsl.get_uri(suffix), as a Python function component does ("-> Dataset"),
// writing its content at the URI's local path only; consume records what
// it reads.
func getURIBehaviors(suffix string, got, outputFile *atomic.Value) map[string]behavior {
	return map[string]behavior{
		"produce": func(_ context.Context, w *taskIO) int {
			outputFile.Store(w.in.Outputs.OutputFile)
			uri := getURI(w, suffix)
			stepWrite(w, localOf(uri), "from get_uri")
			stepWrite(w, w.in.Outputs.Parameters["flag"].OutputFile, "go")
			stepWrite(w, w.in.Outputs.OutputFile, fmt.Sprintf(`{"artifacts": {"data": {"artifacts": [{"name": "data", "uri": %q, "metadata": {"v": 1}}]}}}`, uri))
			return 0
		},
		"consume": func(_ context.Context, w *taskIO) int {
			got.Store(w.in.Inputs.Artifacts["data"].Artifacts[0].URI + "=" + stepRead(w, "data"))
			return 0
		},
	}
}

func minioStore(t *testing.T) *storage.MinIO {
	t.Helper()
	srv := storagetest.StartMinIO(t)
	opts := srv.Options()
	opts.CreateBucket = true
	st, err := storage.OpenMinIO(t.Context(), "minio://geturi/root", opts)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestGetURIRedirect: with either store and either kind of executor, the
// executor output file lies in the task's root under the pipeline root (as
// the step sees it), and an artifact returned with dsl.get_uri(suffix) is
// stored and recorded at that URI, its content taken where the step wrote
// it.
func TestGetURIRedirect(t *testing.T) {
	minio := minioStore(t)
	for _, tc := range []struct {
		executor, store string
	}{{"process", "local"}, {"docker", "local"}, {"process", "minio"}, {"docker", "minio"}} {
		t.Run(tc.executor+"-"+tc.store, func(t *testing.T) {
			var got, outputFile atomic.Value
			e := newEnv(t, getURIBehaviors("dataset", &got, &outputFile))
			if tc.executor == "docker" {
				e.fake.name = "docker"
			}
			var st runner.ArtifactStore = e.store
			if tc.store == "minio" {
				st = minio
			}
			res, err := e.run(t.Context(), loadIR(t, readFixture(t, "appendix_a.yaml")), map[string]any{"text": "x"}, func(o *runner.Options) { o.Store = st; o.NoCache = true })
			if err != nil {
				t.Fatal(err)
			}
			rec := e.hist.task(t, res.RunID, "produce")
			taskRoot := strings.TrimSuffix(st.RunRoot("demo", res.RunID), "/") + "/produce"
			want := taskRoot + "/dataset"
			if a := rec.Outputs.Artifacts["data"][0]; a.URI != want || a.Digest == "" || a.Size != int64(len("from get_uri")) || a.Metadata["v"] != float64(1) {
				t.Errorf("recorded %+v, want %s with its digest and size", a, want)
			}
			if got.Load() != want+"=from get_uri" {
				t.Errorf("consume read %v, want %s=from get_uri", got.Load(), want)
			}
			// Where the step was told to write its executor output.
			var wantOF string
			switch {
			case tc.store == "local":
				wantOF = taskRoot + "/executor_output.json"
			case tc.executor == "docker":
				wantOF = "/minio/geturi/root/demo/" + res.RunID + "/produce/executor_output.json"
			default:
				wantOF = filepath.Join(e.dir, "runs", res.RunID, "produce", "artifacts", "out", "executor_output.json")
			}
			if outputFile.Load() != wantOF {
				t.Errorf("outputs.outputFile = %v, want %s", outputFile.Load(), wantOF)
			}
			if tc.store == "minio" {
				dst := filepath.Join(t.TempDir(), "got")
				if _, err := st.Get(t.Context(), want, dst, ""); err != nil {
					t.Fatal(err)
				}
				if b, _ := os.ReadFile(dst); string(b) != "from get_uri" {
					t.Errorf("%s holds %q", want, b)
				}
			}
		})
	}
}

// TestGetURIDefaultSuffixIsTheDeclaredOutput: dsl.get_uri() (suffix
// "Output") names the declared output of a "-> Dataset" component: not a
// redirect, with every store and executor.
func TestGetURIDefaultSuffixIsTheDeclaredOutput(t *testing.T) {
	for _, executor := range []string{"process", "docker"} {
		t.Run(executor, func(t *testing.T) {
			var got, outputFile atomic.Value
			e := newEnv(t, getURIBehaviors("data", &got, &outputFile))
			if executor == "docker" {
				e.fake.name = "docker"
			}
			res, err := e.run(t.Context(), loadIR(t, readFixture(t, "appendix_a.yaml")), map[string]any{"text": "x"})
			if err != nil {
				t.Fatal(err)
			}
			want := e.store.RunRoot("demo", res.RunID) + "/produce/data"
			if a := e.hist.task(t, res.RunID, "produce").Outputs.Artifacts["data"][0]; a.URI != want || a.Size != int64(len("from get_uri")) {
				t.Errorf("recorded %+v, want %s", a, want)
			}
		})
	}
}

// TestOutputFileRemovedBeforeEachAttempt: what an earlier attempt left in
// the executor output file is not read by the next one.
func TestOutputFileRemovedBeforeEachAttempt(t *testing.T) {
	var n atomic.Int32
	var seen atomic.Value
	e := newEnv(t, map[string]behavior{
		"produce": func(_ context.Context, w *taskIO) int {
			if n.Add(1) == 1 {
				stepWrite(w, w.in.Outputs.OutputFile, `{"parameterValues": {"flag": "stale"}}`)
				return 1
			}
			if _, err := os.Stat(w.in.Outputs.OutputFile); !os.IsNotExist(err) {
				t.Errorf("the first attempt's executor output is still there (%v)", err)
			}
			w.writeArtifact("data", "x")
			w.setParam("flag", "go")
			return 0
		},
		"consume": func(_ context.Context, w *taskIO) int { seen.Store(w.param("msg")); return 0 },
	})
	ir := loadIR(t, strings.Replace(readFixture(t, "appendix_a.yaml"), "      produce:\n        cachingOptions: {enableCache: true}\n", "      produce:\n        cachingOptions: {enableCache: true}\n        retryPolicy: {maxRetryCount: 1}\n", 1))
	if _, err := e.run(t.Context(), ir, map[string]any{"text": "x"}); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 2 || seen.Load() != "go" {
		t.Errorf("%d attempts; consume saw %v", n.Load(), seen.Load())
	}
}

// TestGetURIRefusals: a returned artifact keeps every rule of redirected
// outputs: its URI lies in the pipeline root, in a clean form, not through
// a link, and a container's content for a URI outside its own task root is
// only what it wrote at its declared path.
func TestGetURIRefusals(t *testing.T) {
	outside := t.TempDir()
	for _, tc := range []struct {
		name, executor string
		step           func(w *taskIO) string // returns the URI
		wantErr        string
	}{
		{"another task's root", "docker", func(w *taskIO) string {
			uri := path.Join(path.Dir(path.Dir(w.in.Outputs.OutputFile)), "consume", "dataset")
			stepWrite(w, uri, "planted")
			return uri
		}, "wrote nothing at its path"},
		{"above the task root", "docker", func(w *taskIO) string {
			return path.Dir(w.in.Outputs.OutputFile) + "/../escape"
		}, "not a clean"},
		{"outside the pipeline root", "process", func(w *taskIO) string {
			p := filepath.Join(outside, "dataset")
			stepWrite(w, p, "x")
			return p
		}, "outside the pipeline root"},
		{"through a link in the task root", "docker", func(w *taskIO) string {
			if err := os.Symlink(outside, hostPath(w, getURI(w, "evil"))); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(outside, "f"), []byte("secret"), 0o600); err != nil {
				t.Fatal(err)
			}
			return getURI(w, "evil/f")
		}, "symbolic link"},
		{"a link returned", "process", func(w *taskIO) string {
			if err := os.Symlink(filepath.Join(outside, "f"), hostPath(w, getURI(w, "link"))); err != nil {
				t.Fatal(err)
			}
			return getURI(w, "link")
		}, "symbolic link"},
		{"the executor output file", "docker", func(w *taskIO) string {
			return getURI(w, "executor_output.json")
		}, "executor output file"},
		{"nothing written", "docker", func(w *taskIO) string {
			return getURI(w, "dataset")
		}, "wrote nothing there"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, map[string]behavior{
				"produce": func(_ context.Context, w *taskIO) int {
					uri := tc.step(w)
					w.setParam("flag", "go")
					stepWrite(w, w.in.Outputs.OutputFile, fmt.Sprintf(`{"artifacts": {"data": {"artifacts": [{"uri": %q}]}}}`, uri))
					return 0
				},
			})
			if tc.executor == "docker" {
				e.fake.name = "docker"
			}
			res, err := e.run(t.Context(), loadIR(t, readFixture(t, "appendix_a.yaml")), map[string]any{"text": "x"}, func(o *runner.Options) { o.NoCache = true })
			if err == nil {
				t.Fatal("run succeeded")
			}
			if rec := e.hist.task(t, res.RunID, "produce"); !strings.Contains(rec.Error, tc.wantErr) {
				t.Errorf("error %q, want %q", rec.Error, tc.wantErr)
			}
		})
	}
}

// TestGetURIRefusalsMinIO: with a remote store, a step of this host names
// its staging directory; a path outside it, or not clean, is refused.
func TestGetURIRefusalsMinIO(t *testing.T) {
	st := minioStore(t)
	for name, tc := range map[string]struct {
		uri     func(w *taskIO) string
		wantErr string
	}{
		"above the staging root": {func(w *taskIO) string { return path.Dir(w.in.Outputs.OutputFile) + "/../x" }, "not a clean"},
		"beside the staging root": {func(w *taskIO) string {
			p := filepath.Join(filepath.Dir(filepath.Dir(w.in.Outputs.OutputFile)), "in", "x")
			stepWrite(w, p, "x")
			return p
		}, "outside the pipeline root"},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, map[string]behavior{
				"produce": func(_ context.Context, w *taskIO) int {
					w.setParam("flag", "go")
					stepWrite(w, w.in.Outputs.OutputFile, fmt.Sprintf(`{"artifacts": {"data": {"artifacts": [{"uri": %q}]}}}`, tc.uri(w)))
					return 0
				},
			})
			res, err := e.run(t.Context(), loadIR(t, readFixture(t, "appendix_a.yaml")), map[string]any{"text": "x"}, func(o *runner.Options) { o.Store = st; o.NoCache = true })
			if err == nil {
				t.Fatal("run succeeded")
			}
			if rec := e.hist.task(t, res.RunID, "produce"); !strings.Contains(rec.Error, tc.wantErr) {
				t.Errorf("error %q, want %q", rec.Error, tc.wantErr)
			}
		})
	}
}

// TestGetURIContentWinsOverTheDeclaredPath: a step that wrote both at its
// declared path and at the get_uri path it returns gets the latter stored,
// as KFP's launcher uploads from the returned URI's path; the declared copy
// is not left in the store.
func TestGetURIContentWinsOverTheDeclaredPath(t *testing.T) {
	for _, executor := range []string{"process", "docker"} {
		t.Run(executor, func(t *testing.T) {
			var got, outputFile atomic.Value
			var declared string
			b := getURIBehaviors("dataset", &got, &outputFile)
			produce := b["produce"]
			b["produce"] = func(ctx context.Context, w *taskIO) int {
				declared = w.in.Outputs.Artifacts["data"].Artifacts[0].URI
				stepWrite(w, declared, "declared copy")
				return produce(ctx, w)
			}
			e := newEnv(t, b)
			if executor == "docker" {
				e.fake.name = "docker"
			}
			res, err := e.run(t.Context(), loadIR(t, readFixture(t, "appendix_a.yaml")), map[string]any{"text": "x"})
			if err != nil {
				t.Fatal(err)
			}
			want := e.store.RunRoot("demo", res.RunID) + "/produce/dataset"
			if got.Load() != want+"=from get_uri" {
				t.Errorf("consume read %v", got.Load())
			}
			if _, err := os.Stat(declared); !os.IsNotExist(err) {
				t.Errorf("the declared copy %s is left in the store (%v)", declared, err)
			}
		})
	}
}
