package compiler

import (
	"os"
	"path/filepath"
	"testing"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
)

// The fuzz targets feed arbitrary bytes to the parsers; they must return
// errors, never panic or hang. Run one with e.g.
//
//	go test ./compiler -run '^$' -fuzz FuzzParsePipeline -fuzztime 60s
func addSeeds(f *testing.F, pattern string) {
	files, _ := filepath.Glob(pattern)
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

func FuzzParsePipeline(f *testing.F) {
	addSeeds(f, "../pipelines/*/pipeline.yaml")
	f.Add([]byte("name: x\ntasks:\n  a: {component: c.yaml, for_each: [1, 2], when: 'item > 1'}\n"))
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(echoComponent), 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePipeline(filepath.Join(dir, "pipeline.yaml"), b)
		if err == nil {
			if _, err := Compile(p); err != nil {
				t.Fatalf("a pipeline that validates failed to compile: %v", err)
			}
		}
	})
}

func FuzzParseComponent(f *testing.F) {
	addSeeds(f, "../pipelines/*/components/*.yaml")
	addSeeds(f, "../components/*/component.yaml")
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseComponent("component.yaml", b)
	})
}

// FuzzLoadIR feeds the loader real IR and IR with hostile names: whatever
// loads has only safe names, so that no path the runner builds from them
// can leave its root. (On two cores the engine makes little progress from
// the large golden seeds; make test runs FuzzLoadIRNames instead and this
// one is for long runs by hand.)
func FuzzLoadIR(f *testing.F) {
	addSeeds(f, "testdata/golden/*.json")
	addSeeds(f, "../runner/testdata/*.yaml")
	addHostileSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		ir, err := LoadIRBytes("ir.yaml", b)
		if err != nil {
			return
		}
		assertSafeNames(t, ir)
		if ValidateIR(ir) == nil {
			// Valid IR must also plan without trouble.
			if params, err := ResolveParams(ir, nil, nil); err == nil {
				_, _ = MakePlan(ir, params)
			}
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
