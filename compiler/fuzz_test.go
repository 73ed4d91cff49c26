package compiler

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mlpipe/mlpipe/kfpir"
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

// FuzzPlanIR: IR that loads and validates also plans without trouble.
func FuzzPlanIR(f *testing.F) {
	addSeeds(f, "testdata/golden/*.json")
	addSeeds(f, "../runner/testdata/*.yaml")
	f.Fuzz(func(t *testing.T, b []byte) {
		ir, err := kfpir.LoadIRBytes("ir.yaml", b)
		if err != nil || kfpir.ValidateIR(ir) != nil {
			return
		}
		if params, err := kfpir.ResolveParams(ir, nil, nil); err == nil {
			_, _ = MakePlan(ir, params)
		}
	})
}
