package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlpipe/mlpipe/storage"
	"github.com/mlpipe/mlpipe/storage/storagetest"
)

// The KFP SDK test pipelines that return artifacts made with dsl.get_uri()
// (testdata/pythonic_artifacts_with_multiple_returns.yaml,
// pythonic_artifacts_with_list_of_artifacts.yaml and
// pipeline_with_parallelfor_list_artifacts.yaml, in the SDK's compiled
// shape) run with the stand-in kfp runtime: each artifact is stored and
// recorded at the URI the step returned, with what the step wrote there.

// getURIPipelines runs the three pipelines with c and args (executor,
// pipeline root) and checks what each task recorded; read returns the
// content stored at a URI.
func getURIPipelines(t *testing.T, c *cli, read func(uri string) string, args ...string) {
	t.Helper()
	type art struct{ uri, content string }
	runPipeline := func(file string) map[string]map[string]art {
		t.Helper()
		r, last := c.runJSON(append([]string{"cmd/mlpipe/testdata/" + file}, args...)...)
		if r.code != 0 || last["state"] != "SUCCEEDED" {
			t.Fatalf("%s: exit %d, %v\nstdout:\n%s\nstderr:\n%s", file, r.code, last, r.stdout, r.stderr)
		}
		runID := last["run_id"].(string)
		s := c.show(runID)
		out := map[string]map[string]art{}
		for _, tk := range s.Tasks {
			if tk.State != "SUCCEEDED" {
				t.Errorf("%s: %s %s (%s)", file, tk.Path, tk.State, tk.Reason)
			}
			for name, arts := range tk.Outputs.Artifacts {
				for i, a := range arts {
					if a.Digest == "" {
						continue // a DAG's output: recorded by its producer
					}
					if out[tk.Path] == nil {
						out[tk.Path] = map[string]art{}
					}
					out[tk.Path][fmt.Sprintf("%s/%d", name, i)] = art{a.URI, read(a.URI)}
				}
			}
			for name, v := range tk.Outputs.Parameters {
				if out[tk.Path] == nil {
					out[tk.Path] = map[string]art{}
				}
				out[tk.Path]["param:"+name] = art{content: fmt.Sprint(v)}
			}
		}
		return out
	}
	check := func(file string, got map[string]map[string]art, task, key, uriSuffix, content string) {
		t.Helper()
		a, ok := got[task][key]
		switch {
		case !ok:
			t.Errorf("%s: %s has no output %s: %v", file, task, key, got[task])
		case uriSuffix != "" && !strings.HasSuffix(a.uri, uriSuffix):
			t.Errorf("%s: %s %s at %s, want a URI ending in %s", file, task, key, a.uri, uriSuffix)
		case a.content != content:
			t.Errorf("%s: %s %s holds %q, want %q", file, task, key, a.content, content)
		}
	}

	f := "pythonic_artifacts_with_multiple_returns.yaml"
	got := runPipeline(f)
	check(f, got, "make-dataset", "Output/0", "/make-dataset/dataset", "Hello, world")
	check(f, got, "splitter-pipeline/dataset-splitter", "dataset1/0", "/dataset-splitter/dataset1", "Hello,")
	check(f, got, "splitter-pipeline/dataset-splitter", "dataset2/0", "/dataset-splitter/dataset2", " world")

	f = "pythonic_artifacts_with_list_of_artifacts.yaml"
	got = runPipeline(f)
	for i, text := range []string{"Hello", ",", " ", "world!"} {
		check(f, got, fmt.Sprintf("for-loop-1[%d]/make-dataset", i), "Output/0", "/make-dataset/Output", text)
	}
	check(f, got, "join-datasets", "Output/0", "/join-datasets/joined", "Hello, world!")

	f = "pipeline_with_parallelfor_list_artifacts.yaml"
	got = runPipeline(f)
	for i, text := range []string{"Hello", ",", " ", "world!"} {
		check(f, got, fmt.Sprintf("make-artifacts/for-loop-2[%d]/make-artifact", i), "Output/0", "/make-artifact/Output", text)
		check(f, got, fmt.Sprintf("make-datasets/for-loop-4[%d]/make-dataset", i), "Output/0", "/make-dataset/dataset", text)
		check(f, got, fmt.Sprintf("for-loop-6[%d]/print-artifact-name", i), "param:Output", "", text)
		check(f, got, fmt.Sprintf("for-loop-8[%d]/print-artifact-name-2", i), "param:Output", "", text)
	}
	check(f, got, "join-texts", "param:Output", "", "Hello, world!")
}

// readLocal reads an artifact of the local store.
func readLocal(t *testing.T) func(string) string {
	return func(uri string) string {
		b, err := os.ReadFile(uri)
		if err != nil {
			t.Error(err)
		}
		return string(b)
	}
}

// readMinIO reads an artifact of a MinIO store.
func readMinIO(t *testing.T, srv *storagetest.MinIOServer, root string) func(string) string {
	opts := srv.Options()
	opts.CreateBucket = true
	st, err := storage.OpenMinIO(t.Context(), root, opts)
	if err != nil {
		t.Fatal(err)
	}
	return func(uri string) string {
		dst := filepath.Join(t.TempDir(), "a")
		if _, err := st.Get(t.Context(), uri, dst, ""); err != nil {
			t.Error(err)
			return ""
		}
		b, err := os.ReadFile(dst)
		if err != nil {
			t.Error(err)
		}
		return string(b)
	}
}

func TestGetURIPipelinesProcess(t *testing.T) {
	requirePython(t)
	c := newCLI(t)
	pyWheels(t, c)
	getURIPipelines(t, c, readLocal(t), "--executor", "process")
}

func TestGetURIPipelinesProcessMinIO(t *testing.T) {
	requirePython(t)
	c := newCLI(t)
	pyWheels(t, c)
	srv := startMinIOFor(t, c)
	root := "minio://geturi/root"
	getURIPipelines(t, c, readMinIO(t, srv, root), "--executor", "process", "--pipeline-root", root)
}
