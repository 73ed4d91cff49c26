package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The machine configuration is read below every other source, and its GPU
// policy cannot be loosened by the user: the lease directory is the
// machine's, excluded GPUs add up, the per-user limit only goes down.
func TestMachinePolicyCannotBeLoosened(t *testing.T) {
	home := t.TempDir()
	t.Chdir(home)
	machine := filepath.Join(home, "machine.yaml")
	if _, err := os.Stat(systemConfig); err == nil {
		t.Skipf("%s exists on this machine and wins over MLPIPE_MACHINE_CONFIG", systemConfig)
	}
	if err := os.WriteFile(machine, []byte("max_parallel: 3\ngpu:\n  lock_dir: /srv/gpus\n  exclude: [\"0\"]\n  max_per_user: 4\n  starve_after: 10s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	user := filepath.Join(home, "config", "mlpipe", "config.yaml")
	if err := os.MkdirAll(filepath.Dir(user), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "config"))
	t.Setenv("MLPIPE_MACHINE_CONFIG", machine)
	t.Setenv("MLPIPE_GPU_LOCK_DIR", filepath.Join(home, "mine"))
	type policy struct {
		LockDir     string
		Exclude     []string
		MaxPerUser  int
		MaxParallel int
		StarveAfter time.Duration
	}
	for _, tc := range []struct {
		name, user string
		want       policy
	}{
		{"the user asks for more", "gpu: {exclude: [\"3\"], max_per_user: 8, starve_after: 1000h}\n", policy{"/srv/gpus", []string{"3", "0"}, 4, 3, 10 * time.Second}},
		{"the user asks for less", "max_parallel: 2\ngpu: {max_per_user: 2, starve_after: 5s}\n", policy{"/srv/gpus", []string{"0"}, 2, 2, 5 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(user, []byte(tc.user), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := loadConfig("", nil)
			if err != nil {
				t.Fatal(err)
			}
			got := policy{cfg.GPU.LockDir, cfg.GPU.Exclude, cfg.GPU.MaxPerUser, cfg.MaxParallel, cfg.GPU.StarveAfter}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
