package kfpir

import (
	"os"
	"path/filepath"
	"testing"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
)

// The fuzz targets feed arbitrary bytes to the IR loader; it must return
// errors, never panic or hang. Run one with e.g.
//
//	go test ./kfpir -run '^$' -fuzz FuzzLoadIR -fuzztime 60s
func addSeeds(f *testing.F, pattern string) {
	files, _ := filepath.Glob(pattern)
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

// FuzzLoadIR feeds the loader real IR and IR with hostile names: whatever
// loads has only safe names, so that no path the runner builds from them
// can leave its root. (On two cores the engine makes little progress from
// the large golden seeds; make test runs FuzzLoadIRNames instead and this
// one is for long runs by hand.)
func FuzzLoadIR(f *testing.F) {
	addSeeds(f, "../compiler/testdata/golden/*.json")
	addSeeds(f, "../runner/testdata/*.yaml")
	addHostileSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		ir, err := LoadIRBytes("ir.yaml", b)
		if err != nil {
			return
		}
		assertSafeNames(t, ir)
		if ValidateIR(ir) == nil {
			_, _ = ResolveParams(ir, nil, nil)
		}
	})
}

// FuzzLoadIRNames is the short security fuzz that make test runs: small
// IR documents with hostile names (the engine makes few progress from the
// large golden seeds of FuzzLoadIR on two cores). Whatever loads has only
// safe names.
func FuzzLoadIRNames(f *testing.F) {
	addHostileSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		ir, err := LoadIRBytes("ir.yaml", b)
		if err != nil {
			return
		}
		assertSafeNames(t, ir)
		_ = ValidateIR(ir)
	})
}

func addHostileSeeds(f *testing.F) {
	f.Add([]byte(irWith(nil)))
	for _, key := range []string{`"../../../../victim"`, `".."`, `"/abs"`, `"sub/s"`, `"t[0]"`, `"a\u0000b"`, `"t.0"`} {
		for _, field := range []string{"TASK", "OUTPUT", "INPUT", "COMP", "EXEC"} {
			f.Add([]byte(irWith(map[string]string{field: key})))
		}
	}
}

// assertSafeNames fails unless every name of a loaded IR is a SafeName.
func assertSafeNames(t *testing.T, ir *IR) {
	t.Helper()
	check := func(what, n string) {
		if !SafeName(n) {
			t.Fatalf("the loader accepted %s %q", what, n)
		}
	}
	comps := map[string]*pb.ComponentSpec{"root": ir.Spec.GetRoot()}
	for k, c := range ir.Spec.GetComponents() {
		check("component", k)
		comps[k] = c
	}
	for label := range ir.Executors {
		check("executor", label)
	}
	for _, c := range comps {
		for k := range c.GetDag().GetTasks() {
			check("task key", k)
		}
		for k := range c.GetInputDefinitions().GetParameters() {
			check("input", k)
		}
		for k := range c.GetInputDefinitions().GetArtifacts() {
			check("input", k)
		}
		for k := range c.GetOutputDefinitions().GetParameters() {
			check("output", k)
		}
		for k := range c.GetOutputDefinitions().GetArtifacts() {
			check("output", k)
		}
	}
}
