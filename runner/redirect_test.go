package runner_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mlpipe/mlpipe/kfpir"
	"github.com/mlpipe/mlpipe/runner"
	"github.com/mlpipe/mlpipe/storage"
	"github.com/mlpipe/mlpipe/storage/storagetest"
)

// redirecting returns behaviors where produce writes its artifact at the
// declared path and points it at uri in the executor output
// (docs/kfp-semantics.md §3.3: a non-empty uri replaces), and consume
// records what it reads.
func redirecting(uri func(w *taskIO) string, content string, got *atomic.Value) map[string]behavior {
	return map[string]behavior{
		"produce": func(_ context.Context, w *taskIO) int {
			w.writeArtifact("data", content)
			w.setParam("flag", "go")
			eo := fmt.Sprintf(`{"artifacts": {"data": {"artifacts": [{"uri": %q, "metadata": {"v": 1}}]}}}`, uri(w))
			if err := os.WriteFile(w.in.Outputs.OutputFile, []byte(eo), 0o644); err != nil {
				w.t.Error(err)
			}
			return 0
		},
		"consume": func(_ context.Context, w *taskIO) int {
			a := w.in.Inputs.Artifacts["data"].Artifacts[0]
			got.Store(a.URI + "=" + w.readArtifact("data", 0))
			return 0
		},
	}
}

func TestRedirectedOutputIsStoredAtItsURI(t *testing.T) {
	var got atomic.Value
	var declared string
	var e *env
	e = newEnv(t, redirecting(func(w *taskIO) string {
		declared = w.in.Outputs.Artifacts["data"].Artifacts[0].URI
		return e.store.Root() + "/registry/data/v1"
	}, "model-1", &got))
	ir := loadIR(t, readFixture(t, "appendix_a.yaml"))
	res, err := e.run(t.Context(), ir, map[string]any{"text": "x"}, func(o *runner.Options) { o.NoCache = true })
	if err != nil {
		t.Fatal(err)
	}
	want := e.store.Root() + "/registry/data/v1"
	if got.Load() != want+"=model-1" {
		t.Errorf("consume read %v, want %s=model-1", got.Load(), want)
	}
	rec := e.hist.task(t, res.RunID, "produce")
	a := rec.Outputs.Artifacts["data"][0]
	if a.URI != want || a.Digest == "" || a.Metadata["v"] != float64(1) {
		t.Errorf("recorded %+v", a)
	}
	if _, err := os.Stat(declared); !os.IsNotExist(err) {
		t.Errorf("the copy at the declared URI %s is left behind (%v)", declared, err)
	}

	// A second run may not replace the version the first one stored.
	got = atomic.Value{}
	e2 := newEnv(t, redirecting(func(*taskIO) string { return want }, "model-2", &got))
	e2.store, e2.dir = e.store, e.dir
	res2, err := e2.run(t.Context(), ir, map[string]any{"text": "x"}, func(o *runner.Options) { o.NoCache = true })
	if err == nil {
		t.Fatal("the second run replaced an existing artifact")
	}
	rec2 := e2.hist.task(t, res2.RunID, "produce")
	if rec2.State != runner.Failed || !strings.Contains(rec2.Error, "already exists") {
		t.Errorf("produce: %s %q", rec2.State, rec2.Error)
	}
	if b, _ := os.ReadFile(want); string(b) != "model-1" {
		t.Errorf("the stored version now holds %q", b)
	}

	// The same content is there already (an attempt that stored it before
	// mlpipe was killed, then resumed): that is success, not a conflict.
	got = atomic.Value{}
	e3 := newEnv(t, redirecting(func(*taskIO) string { return want }, "model-1", &got))
	e3.store, e3.dir = e.store, e.dir
	res3, err := e3.run(t.Context(), ir, map[string]any{"text": "x"}, func(o *runner.Options) { o.NoCache = true })
	if err != nil {
		t.Fatalf("storing the same content again: %v", err)
	}
	if a3 := e3.hist.task(t, res3.RunID, "produce").Outputs.Artifacts["data"][0]; a3.URI != want || a3.Digest != a.Digest {
		t.Errorf("recorded %+v, want %s with digest %s", a3, want, a.Digest)
	}
}

func TestRedirectOutsideThePipelineRootFails(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "elsewhere")
	for uri, want := range map[string]string{
		outside:                          "outside the pipeline root",
		"ROOT":                           "outside the pipeline root",
		"minio://bucket/key":             "outside the pipeline root",
		"ROOT/../escape":                 "not a clean",
		"ROOT/./a":                       "not a clean",
		"ROOT/a//b":                      "not a clean",
		"relative/path":                  "not a clean",
		"ROOT/r/.mlpipe-manifest.x.json": "reserve",
		"ROOT/r/x.mlpipe-tmp":            "reserve",
	} {
		t.Run(uri, func(t *testing.T) {
			var got atomic.Value
			var e *env
			e = newEnv(t, redirecting(func(*taskIO) string { return strings.Replace(uri, "ROOT", e.store.Root(), 1) }, "x", &got))
			res, err := e.run(t.Context(), loadIR(t, readFixture(t, "appendix_a.yaml")), map[string]any{"text": "x"})
			if err == nil {
				t.Fatal("run succeeded")
			}
			rec := e.hist.task(t, res.RunID, "produce")
			if !strings.Contains(rec.Error, want) {
				t.Errorf("error %q, want %q", rec.Error, want)
			}
			if _, err := os.Stat(outside); !os.IsNotExist(err) {
				t.Errorf("%s was written", outside)
			}
		})
	}
}

// A step that writes straight to the new URI's path (as kfp.local
// components do) keeps its artifact there, even outside the run.
func TestRedirectWrittenInPlace(t *testing.T) {
	var got atomic.Value
	var e *env
	e = newEnv(t, map[string]behavior{
		"produce": func(_ context.Context, w *taskIO) int {
			uri := e.store.Root() + "/shared/data"
			if err := os.MkdirAll(filepath.Dir(uri), 0o755); err != nil {
				t.Error(err)
			}
			if err := os.WriteFile(uri, []byte("in place"), 0o644); err != nil {
				t.Error(err)
			}
			w.setParam("flag", "go")
			eo := fmt.Sprintf(`{"artifacts": {"data": {"artifacts": [{"uri": %q}]}}}`, uri)
			if err := os.WriteFile(w.in.Outputs.OutputFile, []byte(eo), 0o644); err != nil {
				t.Error(err)
			}
			return 0
		},
		"consume": func(_ context.Context, w *taskIO) int { got.Store(w.readArtifact("data", 0)); return 0 },
	})
	res, err := e.run(t.Context(), loadIR(t, readFixture(t, "appendix_a.yaml")), map[string]any{"text": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Load() != "in place" {
		t.Errorf("consume read %v", got.Load())
	}
	want := e.store.Root() + "/shared/data"
	if a := e.hist.task(t, res.RunID, "produce").Outputs.Artifacts["data"][0]; a.URI != want || a.Size != int64(len("in place")) || a.Digest == "" {
		t.Errorf("recorded %+v, want %s with its size and digest", a, want)
	}
}

// publishIR is appendix_a with a second output artifact on produce.
func publishIR(t *testing.T) *kfpir.IR {
	t.Helper()
	src := strings.Replace(readFixture(t, "appendix_a.yaml"), `    outputDefinitions:
      artifacts:
        data:
          artifactType: {schemaTitle: system.Dataset, schemaVersion: 0.0.1}`, `    outputDefinitions:
      artifacts:
        data:
          artifactType: {schemaTitle: system.Dataset, schemaVersion: 0.0.1}
        extra:
          artifactType: {schemaTitle: system.Artifact, schemaVersion: 0.0.1}`, 1)
	if !strings.Contains(src, "extra:") {
		t.Fatal("appendix_a.yaml changed: cannot add the second output")
	}
	return loadIR(t, src)
}

// TestRedirectRefusals: what a step may not do with a redirected output,
// and that a refused or failed attempt leaves nothing published.
func TestRedirectRefusals(t *testing.T) {
	outside := t.TempDir()
	type step func(e *env, w *taskIO) (uri string)
	for _, tc := range []struct {
		name    string
		step    step
		wantErr string
	}{
		{"through a link the step made", func(e *env, w *taskIO) string {
			w.writeArtifact("data", "key")
			link := filepath.Join(filepath.Dir(w.in.Outputs.Artifacts["data"].Artifacts[0].URI), "evil")
			if err := os.Symlink(outside, link); err != nil {
				t.Fatal(err)
			}
			return link + "/authorized_keys"
		}, "symbolic link"},
		{"the output is a link", func(e *env, w *taskIO) string {
			decl := w.in.Outputs.Artifacts["data"].Artifacts[0].URI
			if err := os.Symlink(filepath.Join(outside, "secret"), decl); err != nil {
				t.Fatal(err)
			}
			return e.store.Root() + "/registry/m/v1"
		}, "symbolic link"},
		{"nothing written", func(e *env, w *taskIO) string {
			return e.store.Root() + "/registry/m/v1"
		}, "wrote nothing"},
		{"over the task's own outputs", func(e *env, w *taskIO) string {
			w.writeArtifact("data", "x")
			return filepath.Dir(w.in.Outputs.Artifacts["data"].Artifacts[0].URI)
		}, "overlaps"},
		{"under another output of the task", func(e *env, w *taskIO) string {
			w.writeArtifact("data", "x")
			return w.in.Outputs.Artifacts["extra"].Artifacts[0].URI + "/sub"
		}, "overlaps"},
		{"in another task's directory", func(e *env, w *taskIO) string {
			w.writeArtifact("data", "x")
			other := filepath.Join(filepath.Dir(filepath.Dir(w.in.Outputs.Artifacts["data"].Artifacts[0].URI)), "consume", "data")
			if err := os.MkdirAll(filepath.Dir(other), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(other, []byte("theirs"), 0o644); err != nil {
				t.Fatal(err)
			}
			return other
		}, "already exists"},
		{"a later output fails", func(e *env, w *taskIO) string {
			w.writeArtifact("data", "x")
			extra := w.in.Outputs.Artifacts["extra"].Artifacts[0].URI
			if err := os.Symlink(filepath.Join(outside, "secret"), extra); err != nil {
				t.Fatal(err)
			}
			return e.store.Root() + "/registry/m/v1"
		}, "extra"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
				t.Fatal(err)
			}
			var e *env
			e = newEnv(t, map[string]behavior{
				"produce": func(_ context.Context, w *taskIO) int {
					uri := tc.step(e, w)
					w.setParam("flag", "go")
					eo := fmt.Sprintf(`{"artifacts": {"data": {"artifacts": [{"uri": %q}]}}}`, uri)
					if err := os.WriteFile(w.in.Outputs.OutputFile, []byte(eo), 0o644); err != nil {
						t.Error(err)
					}
					return 0
				},
			})
			res, err := e.run(t.Context(), publishIR(t), map[string]any{"text": "x"}, func(o *runner.Options) { o.NoCache = true })
			if err == nil {
				t.Fatal("run succeeded")
			}
			rec := e.hist.task(t, res.RunID, "produce")
			if !strings.Contains(rec.Error, tc.wantErr) {
				t.Errorf("error %q, want %q", rec.Error, tc.wantErr)
			}
			if _, err := os.Stat(filepath.Join(outside, "authorized_keys")); err == nil {
				t.Error("a file was written through the step's link")
			}
			if _, err := os.Stat(e.store.Root() + "/registry"); err == nil {
				entries, _ := os.ReadDir(e.store.Root() + "/registry/m")
				if len(entries) > 0 {
					t.Errorf("the failed task left a published version: %v", entries)
				}
			}
		})
	}
}

// TestRedirectNormalisesTheURI: file:// and a trailing slash name the same
// place; the record holds the clean URI and the content is there.
func TestRedirectNormalisesTheURI(t *testing.T) {
	var got atomic.Value
	var e *env
	e = newEnv(t, redirecting(func(*taskIO) string { return "file://" + e.store.Root() + "/registry/m/v1/" }, "model", &got))
	res, err := e.run(t.Context(), loadIR(t, readFixture(t, "appendix_a.yaml")), map[string]any{"text": "x"})
	if err != nil {
		t.Fatal(err)
	}
	want := e.store.Root() + "/registry/m/v1"
	if a := e.hist.task(t, res.RunID, "produce").Outputs.Artifacts["data"][0]; a.URI != want || a.Digest == "" {
		t.Errorf("recorded %+v, want %s", a, want)
	}
	if b, err := os.ReadFile(want); err != nil || string(b) != "model" {
		t.Errorf("%s: %q, %v", want, b, err)
	}
}

// TestRedirectWithCustomPath: a customPath does not get around the rule
// that an existing artifact outside the task is not replaced.
func TestRedirectWithCustomPath(t *testing.T) {
	var e *env
	target := func() string { return e.store.Root() + "/registry/m/v1" }
	e = newEnv(t, map[string]behavior{
		"produce": func(_ context.Context, w *taskIO) int {
			custom := filepath.Join(filepath.Dir(w.in.Outputs.OutputFile), "custom")
			if err := os.WriteFile(custom, []byte("other"), 0o644); err != nil {
				t.Error(err)
			}
			w.setParam("flag", "go")
			eo := fmt.Sprintf(`{"artifacts": {"data": {"artifacts": [{"uri": %q, "customPath": %q}]}}}`, target(), custom)
			if err := os.WriteFile(w.in.Outputs.OutputFile, []byte(eo), 0o644); err != nil {
				t.Error(err)
			}
			return 0
		},
	})
	if err := os.MkdirAll(filepath.Dir(target()), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(target(), []byte("published"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := e.run(t.Context(), loadIR(t, readFixture(t, "appendix_a.yaml")), map[string]any{"text": "x"})
	if err == nil {
		t.Fatal("run succeeded")
	}
	if rec := e.hist.task(t, res.RunID, "produce"); !strings.Contains(rec.Error, "already exists") {
		t.Errorf("error %q", rec.Error)
	}
	if b, _ := os.ReadFile(target()); string(b) != "published" {
		t.Errorf("the published artifact now holds %q", b)
	}
}

// TestRedirectWithMinIO: with a real MinIO store, a version is published
// once; different content at the same URI, or a URI that is the prefix of
// stored artifacts, is refused and nothing stored is deleted.
func TestRedirectWithMinIO(t *testing.T) {
	srv := storagetest.StartMinIO(t)
	opts := srv.Options()
	opts.CreateBucket = true
	st, err := storage.OpenMinIO(t.Context(), "minio://reg/root", opts)
	if err != nil {
		t.Fatal(err)
	}
	ir := loadIR(t, readFixture(t, "appendix_a.yaml"))
	publish := func(uri, content string) (*runner.TaskRecord, error) {
		e := newEnv(t, map[string]behavior{
			"produce": func(_ context.Context, w *taskIO) int {
				a := w.in.Outputs.Artifacts["data"].Artifacts[0]
				if err := os.WriteFile(a.CustomPath, []byte(content), 0o644); err != nil {
					t.Error(err)
				}
				w.setParam("flag", "go")
				eo := fmt.Sprintf(`{"artifacts": {"data": {"artifacts": [{"uri": %q}]}}}`, uri)
				if err := os.WriteFile(w.in.Outputs.OutputFile, []byte(eo), 0o644); err != nil {
					t.Error(err)
				}
				return 0
			},
		})
		res, err := e.run(t.Context(), ir, map[string]any{"text": "x"}, func(o *runner.Options) { o.Store = st; o.NoCache = true })
		return e.hist.task(t, res.RunID, "produce"), err
	}
	v1 := "minio://reg/root/registry/m/v1"
	rec, err := publish(v1, "model-1")
	if err != nil {
		t.Fatal(err)
	}
	if a := rec.Outputs.Artifacts["data"][0]; a.URI != v1 || a.Digest == "" {
		t.Errorf("recorded %+v", a)
	}
	if _, err := publish(v1, "model-1"); err != nil {
		t.Errorf("the same content again: %v", err)
	}
	for _, uri := range []string{v1, "minio://reg/root/registry/m", "minio://reg/root/registry"} {
		rec, err := publish(uri, "model-2")
		if err == nil || !strings.Contains(rec.Error, "already exists") {
			t.Errorf("%s: %v, %q", uri, err, rec.Error)
		}
	}
	dst := filepath.Join(t.TempDir(), "v1")
	if _, err := st.Get(t.Context(), v1, dst, ""); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "model-1" {
		t.Errorf("v1 holds %q", b)
	}
}

// TestRedirectDockerCustomPath: a container's customPath is a path of the
// container, not of the host: only its declared output path is accepted.
func TestRedirectDockerCustomPath(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	for cp, want := range map[string]string{secret: "customPath", "": ""} {
		t.Run(fmt.Sprintf("%q", cp), func(t *testing.T) {
			e := newEnv(t, map[string]behavior{
				"produce": func(_ context.Context, w *taskIO) int {
					w.writeArtifact("data", "mine")
					w.setParam("flag", "go")
					p := cp
					if p == "" {
						p = w.in.Outputs.Artifacts["data"].Artifacts[0].URI
					}
					eo := fmt.Sprintf(`{"artifacts": {"data": {"artifacts": [{"customPath": %q}]}}}`, p)
					if err := os.WriteFile(w.in.Outputs.OutputFile, []byte(eo), 0o644); err != nil {
						t.Error(err)
					}
					return 0
				},
			})
			e.fake.name = "docker"
			res, err := e.run(t.Context(), loadIR(t, readFixture(t, "appendix_a.yaml")), map[string]any{"text": "x"})
			rec := e.hist.task(t, res.RunID, "produce")
			if want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if a := rec.Outputs.Artifacts["data"][0]; a.Size != int64(len("mine")) {
					t.Errorf("recorded %+v", a)
				}
				return
			}
			if err == nil || !strings.Contains(rec.Error, want) {
				t.Errorf("%v, %q; want an error about %s", err, rec.Error, want)
			}
		})
	}
}

// TestLinksLeftInTheTaskDirectory: mlpipe does not read a host file
// through a link a step leaves where its parameter or executor output
// file goes.
func TestLinksLeftInTheTaskDirectory(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("s3cr3t"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, plant := range map[string]func(w *taskIO) string{
		"parameter file":  func(w *taskIO) string { return w.in.Outputs.Parameters["flag"].OutputFile },
		"executor output": func(w *taskIO) string { return w.in.Outputs.OutputFile },
	} {
		t.Run(name, func(t *testing.T) {
			var msg atomic.Value
			e := newEnv(t, map[string]behavior{
				"produce": func(_ context.Context, w *taskIO) int {
					w.writeArtifact("data", "x")
					if err := os.Symlink(secret, plant(w)); err != nil {
						t.Fatal(err)
					}
					return 0
				},
				"consume": func(_ context.Context, w *taskIO) int { msg.Store(w.param("msg")); return 0 },
			})
			res, err := e.run(t.Context(), loadIR(t, readFixture(t, "appendix_a.yaml")), map[string]any{"text": "x"})
			if err == nil {
				t.Fatalf("run succeeded; consume saw %v", msg.Load())
			}
			if rec := e.hist.task(t, res.RunID, "produce"); strings.Contains(rec.Error, "s3cr3t") || rec.Outputs.Parameters["flag"] == "s3cr3t" {
				t.Errorf("the secret leaked: %+v", rec)
			}
		})
	}
}
