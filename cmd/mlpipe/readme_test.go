package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var fence = regexp.MustCompile("(?s)```(\\w*)\\n(.*?)```")

func readmeBlocks(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, m := range fence.FindAllStringSubmatch(string(b), -1) {
		out[m[1]] = append(out[m[1]], m[2])
	}
	return out
}

// TestReadmeQuickstart keeps the README's two-command quickstart true: the
// first block names make demo and make test, CI runs exactly make test,
// and make demo works.
func TestReadmeQuickstart(t *testing.T) {
	blocks := readmeBlocks(t)
	first := blocks["sh"][0]
	if !strings.Contains(first, "make demo") || !strings.Contains(first, "make test") {
		t.Fatalf("the README's first block is not the quickstart:\n%s", first)
	}
	ci, err := os.ReadFile(filepath.Join(repoRoot(t), ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^make test$`).Match(ci) {
		t.Errorf(".ci/run does not run the README's test command (make test)")
	}
	c := newCLI(t)
	cmd := exec.Command("make", "demo")
	cmd.Dir = repoRoot(t)
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make demo: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "SUCCEEDED") {
		t.Errorf("make demo did not report a successful run:\n%s", out)
	}
}

// TestReadmeTutorialCommands runs the tutorial's mlpipe commands that need
// nothing beyond this machine, and validates its example files.
func TestReadmeTutorialCommands(t *testing.T) {
	c := newCLI(t)
	c.env = append(c.env, "MLPIPE_GPU_MOCK=dgxa100")
	blocks := readmeBlocks(t)
	ran := 0
	for _, block := range blocks["sh"][1:] {
		for _, line := range strings.Split(block, "\n") {
			line = strings.TrimSpace(line)
			if loc := regexp.MustCompile(`\s+#\s`).FindStringIndex(line); loc != nil {
				line = strings.TrimSpace(line[:loc[0]])
			}
			if i := strings.Index(line, " > "); i > 0 {
				line = strings.TrimSpace(line[:i])
			}
			if !strings.HasPrefix(line, "mlpipe ") || strings.HasSuffix(line, "\\") {
				continue
			}
			// What needs a cluster, an object store or an earlier run's id
			// is not run here (the submit, MinIO and resume tests cover it).
			if regexp.MustCompile(`RUN_ID|VERSION|submit|minio|--compare|logs latest 'train\[0\]' -f`).MatchString(line) {
				continue
			}
			args := strings.Fields(strings.TrimPrefix(line, "mlpipe "))
			for i, a := range args {
				args[i] = strings.Trim(a, "'")
				if strings.Contains(a, "=") && strings.Contains(a, "'") {
					args[i] = strings.ReplaceAll(a, "'", "")
				}
			}
			joined := strings.Join(args, " ")
			joined = strings.ReplaceAll(joined, "learning_rates=[0.5, 0.1, 0.02]", "learning_rates=[0.5,0.1,0.02]")
			args = strings.Fields(joined)
			if args[0] == "compile" || args[0] == "bench" || strings.Contains(joined, "--timeline") || strings.Contains(joined, "--report") {
				for i, a := range args {
					if strings.HasSuffix(a, ".yaml") && args[0] == "compile" || strings.HasSuffix(a, ".svg") || strings.HasSuffix(a, ".html") {
						args[i] = filepath.Join(t.TempDir(), filepath.Base(a))
					}
				}
			}
			if args[0] == "run" && args[1] == "training.yaml" {
				continue
			}
			if args[0] == "bench" {
				args = append(args, "--repeat", "1", "--warmup", "0", "-p", "epochs=2")
				for i := range args {
					if args[i] == "--repeat" && i+1 < len(args) && args[i+1] != "1" {
						args[i+1] = "2"
					}
				}
			}
			if r := c.run(args...); r.code != 0 {
				t.Errorf("README command `mlpipe %s`: exit %d\n%s\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
			}
			ran++
		}
	}
	if ran < 10 {
		t.Errorf("ran only %d README commands", ran)
	}
	// The example component and pipeline of the tutorial are valid.
	dir := t.TempDir()
	var comp, pipe string
	for _, y := range blocks["yaml"] {
		switch {
		case strings.HasPrefix(y, "name: word-count"):
			comp = y
		case strings.HasPrefix(y, "name: hello"):
			pipe = strings.ReplaceAll(y, "../quickstart", filepath.Join(repoRoot(t), "pipelines", "quickstart"))
		}
	}
	if comp == "" || pipe == "" {
		t.Fatal("the tutorial's component or pipeline is missing from the README")
	}
	if err := os.WriteFile(filepath.Join(dir, "component.yaml"), []byte(comp), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pipeline.yaml"), []byte(pipe), 0o644); err != nil {
		t.Fatal(err)
	}
	c.mustRun("validate", filepath.Join(dir, "component.yaml"), filepath.Join(dir, "pipeline.yaml"))
	if r := c.mustRun("run", dir); !strings.Contains(r.stdout, "SUCCEEDED") {
		t.Errorf("the tutorial pipeline did not succeed:\n%s", r.stdout)
	}
}
