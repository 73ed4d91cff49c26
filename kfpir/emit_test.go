package kfpir

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestToMapMatchesProtojson: ToMap gives what protojson gives, for every
// compiled example pipeline (the compiler's golden IR) and the runner's
// SDK-written IR.
func TestToMapMatchesProtojson(t *testing.T) {
	files, _ := filepath.Glob("../compiler/testdata/golden/*.json")
	more, _ := filepath.Glob("../runner/testdata/*.yaml")
	files = append(files, more...)
	if len(files) < 5 {
		t.Fatalf("found %d IR files", len(files))
	}
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		ir, err := LoadIRBytes(path, src)
		if err != nil {
			t.Fatal(err)
		}
		want, err := toMapViaJSON(ir.Spec)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := ToMap(ir.Spec)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-protojson +ToMap):\n%s", path, diff)
		}
	}
}
