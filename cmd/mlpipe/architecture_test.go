package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestArchitectureListIsCurrent keeps the package list of
// docs/architecture.md equal to what go list says the packages import.
func TestArchitectureListIsCurrent(t *testing.T) {
	root := repoRoot(t)
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/mlpipe/mlpipe/"
	want := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], mod)
		deps := []string{}
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, mod) {
				deps = append(deps, strings.TrimPrefix(imp, mod))
			}
		}
		slices.Sort(deps)
		want[pkg] = deps
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	edge := regexp.MustCompile(`(?m)^([a-z][a-z/]*)\s+-> (.*)$`)
	for _, m := range edge.FindAllStringSubmatch(string(doc), -1) {
		deps := []string{}
		if m[2] != "(none)" {
			deps = strings.Fields(m[2])
		}
		slices.Sort(deps)
		got[m[1]] = deps
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("docs/architecture.md's package list is not what go list says (-go list +doc); update the list and the diagram:\n%s", d)
	}
}
