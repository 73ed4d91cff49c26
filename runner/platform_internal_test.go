package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlpipe/mlpipe/contract"
	"github.com/mlpipe/mlpipe/platform"
)

type isolatedExec struct{ Executor }

func (isolatedExec) Properties() contract.ExecutorProperties {
	return contract.ExecutorProperties{Isolated: true}
}

// TestSecurityPVCSubPathLinks: a step writes in its PVC; a link it leaves
// there must not carry a later task's subPath mount (or the directory made
// for it) out of the PVC, and a link in the task directory must not point
// the empty directories' removal elsewhere.
func TestSecurityPVCSubPathLinks(t *testing.T) {
	state, outside := t.TempDir(), t.TempDir()
	r := &run{opts: Options{StateDir: state, Executor: isolatedExec{}}}
	pvc := filepath.Join(state, "pvcs", "data")
	if err := os.MkdirAll(pvc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(pvc, "x")); err != nil {
		t.Fatal(err)
	}
	c := &containerTask{r: r, dir: t.TempDir(), plat: &platform.Local{PVCs: []platform.PVCMount{{Name: "data", MountPath: "/data", SubPath: "x/y"}}}}
	if _, err := c.platformMounts(); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("a subPath through a link: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "y")); err == nil {
		t.Error("the subPath directory was made outside the PVC")
	}
	c.plat.PVCs[0].SubPath = "ok/sub"
	ms, err := c.platformMounts()
	if err != nil || len(ms) != 1 || ms[0].HostPath != filepath.Join(pvc, "ok", "sub") {
		t.Fatalf("a plain subPath: %v %+v", err, ms)
	}

	// Empty directories: the task directory is the step's.
	keep := filepath.Join(outside, "0", "keep")
	if err := os.MkdirAll(keep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(c.dir, "emptydir")); err != nil {
		t.Fatal(err)
	}
	c.plat = &platform.Local{EmptyDirs: []platform.EmptyDir{{MountPath: "/scratch"}}}
	if _, err := c.platformMounts(); err == nil {
		t.Fatal("an empty directory through a link was accepted")
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("a file outside the task directory was removed: %v", err)
	}
}
