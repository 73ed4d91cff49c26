package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite docs/cli.md")

// TestCLIReferenceIsCurrent: docs/cli.md is what the commands say.
func TestCLIReferenceIsCurrent(t *testing.T) {
	a := newApp(nil, &bytes.Buffer{}, &bytes.Buffer{})
	var b bytes.Buffer
	if err := writeCLIReference(&b, a.root); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(repoRoot(t), "docs", "cli.md")
	if *updateDocs {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/mlpipe -run TestCLIReferenceIsCurrent -update-docs)", err)
	}
	if !bytes.Equal(have, b.Bytes()) {
		t.Errorf("docs/cli.md is stale: run go test ./cmd/mlpipe -run TestCLIReferenceIsCurrent -update-docs")
	}
}
