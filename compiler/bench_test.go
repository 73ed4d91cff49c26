package compiler

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlpipe/mlpipe/kfpir"
)

// genPipeline writes a pipeline of n tasks in layers of 50, each task
// reading the output of one task of the previous layer.
func genPipeline(b testing.TB, n int) string {
	dir := b.TempDir()
	write(b, dir, "c.yaml", echoComponent)
	var sb strings.Builder
	sb.WriteString("name: big\ninputs:\n  seed: {type: String, default: x}\ntasks:\n")
	for i := 0; i < n; i++ {
		if i < 50 {
			fmt.Fprintf(&sb, "  t%d: {component: c.yaml, inputs: {msg: '${{ inputs.seed }}'}}\n", i)
			continue
		}
		fmt.Fprintf(&sb, "  t%d: {component: c.yaml, inputs: {msg: 'from ${{ tasks.t%d.outputs.out }}', n: %d}}\n", i, (i/50-1)*50+(i*7)%50, i)
	}
	write(b, dir, "pipeline.yaml", sb.String())
	return filepath.Join(dir, "pipeline.yaml")
}

// BenchmarkCompile5000 loads and compiles a generated 5,000-task pipeline
// (goal: under 1 s and 200 MB).
func BenchmarkCompile5000(b *testing.B) {
	path := genPipeline(b, 5000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, err := LoadPipeline(path)
		if err != nil {
			b.Fatal(err)
		}
		spec, err := Compile(p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := kfpir.Marshal(spec, kfpir.YAML); err != nil {
			b.Fatal(err)
		}
	}
}
