package compiler

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestQuickKindAgreesWithParser checks that the line scan either agrees
// with the full parse or gives up.
func TestQuickKindAgreesWithParser(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		want  Kind
		quick bool // the line scan decides by itself
	}{
		{"pipeline", "name: p\ntasks:\n  a: {component: c.yaml}\n", KindPipeline, true},
		{"component", "name: c\nimplementation:\n  container: {image: x}\n", KindComponent, true},
		{"ir", "# PIPELINE DEFINITION\npipelineInfo: {name: p}\nroot:\n  dag: {}\n", KindIR, true},
		{"pipeline job", "pipelineSpec:\n  root: {}\n", KindIR, true},
		{"doc marker", "---\nname: p\ntasks: {}\n", KindPipeline, true},
		{"second document ignored", "name: c\nimplementation: {}\n---\nroot: {}\n", KindComponent, true},
		{"tasks inside a block scalar", "name: c\ndescription: |\n  tasks: no\nimplementation: {}\n", KindComponent, true},
		{"flow style", "{name: p, tasks: {}}\n", KindPipeline, false},
		{"merge key", "base: &b {tasks: {}}\n<<: *b\nname: p\n", KindPipeline, false},
		{"quoted key", "\"tasks\": {}\nname: p\n", KindPipeline, false},
		{"plain scalar with colon", "name:x\ntasks: {}\n", KindUnknown, false},
		{"top-level list", "- tasks: {}\n", KindUnknown, false},
		{"nothing known", "name: p\n", KindUnknown, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, ok := quickKind([]byte(tt.src))
			if ok != tt.quick {
				t.Fatalf("quickKind decided = %v, want %v", ok, tt.quick)
			}
			if ok && k != tt.want {
				t.Errorf("quickKind = %v, want %v", k, tt.want)
			}
			got, err := DetectKind("x.yaml", []byte(tt.src))
			if tt.want == KindUnknown {
				if err == nil {
					t.Errorf("DetectKind = %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("DetectKind: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("DetectKind (-want +got):\n%s", diff)
			}
		})
	}
}
