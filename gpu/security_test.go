//go:build linux && cgo

package gpu

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mlpipe/mlpipe/runner"
)

// TestSecurityLeaseDoesNotFollowPlantedLink: whatever another user plants
// in the shared lock directory under the names mlpipe uses (a symbolic
// link to a file of the victim's, a dangling one, a hard link, a FIFO),
// leasing, recording the holder, listing holders and releasing never
// change, create or truncate a file outside the directory: the allocation
// fails clearly or the GPU is treated as unavailable.
func TestSecurityLeaseDoesNotFollowPlantedLink(t *testing.T) {
	const precious = "the victim's data, which mlpipe must never touch\n"
	type env struct{ dir, uuid, victim, missing string }
	symlink := func(target func(env) string, name func(env) string) func(*testing.T, env) {
		return func(t *testing.T, e env) {
			if err := os.Symlink(target(e), filepath.Join(e.dir, name(e))); err != nil {
				t.Fatal(err)
			}
		}
	}
	victim := func(e env) string { return e.victim }
	missing := func(e env) string { return e.missing }
	allocLock := func(env) string { return "alloc.lock" }
	gpuLock := func(e env) string { return "gpu-" + e.uuid + ".lock" }
	tests := []struct {
		name  string
		plant func(*testing.T, env)
		// allocRefused: Acquire fails at once, naming the link;
		// gpuRefused: the planted GPU is never leased.
		allocRefused, gpuRefused bool
	}{
		{name: "alloc.lock is a symlink to a file", plant: symlink(victim, allocLock), allocRefused: true},
		{name: "alloc.lock is a dangling symlink", plant: symlink(missing, allocLock), allocRefused: true},
		{name: "GPU lock is a symlink to a file", plant: symlink(victim, gpuLock), gpuRefused: true},
		{name: "GPU lock is a dangling symlink", plant: symlink(missing, gpuLock), gpuRefused: true},
		{name: "GPU lock is a hard link to a file", plant: func(t *testing.T, e env) {
			if err := os.Link(e.victim, filepath.Join(e.dir, gpuLock(e))); err != nil {
				t.Fatal(err)
			}
		}, gpuRefused: true},
		{name: "GPU lock is a FIFO", plant: func(t *testing.T, e env) {
			if err := syscall.Mkfifo(filepath.Join(e.dir, gpuLock(e)), 0o666); err != nil {
				t.Fatal(err)
			}
		}, gpuRefused: true},
		{name: "former holder record names are symlinks", plant: func(t *testing.T, e env) {
			for name, target := range map[string]string{
				"gpu-" + e.uuid + ".lease.json":     e.missing,
				"gpu-" + e.uuid + ".lease.json.tmp": e.victim,
			} {
				if err := os.Symlink(target, filepath.Join(e.dir, name)); err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			outside := t.TempDir()
			e := env{dir: dir, victim: filepath.Join(outside, "victim"), missing: filepath.Join(outside, "missing")}
			if err := os.WriteFile(e.victim, []byte(precious), 0o644); err != nil {
				t.Fatal(err)
			}
			a := newMockAllocator(t, "dgxa100", dir)
			devs, err := a.Inventory().Devices()
			if err != nil {
				t.Fatal(err)
			}
			e.uuid = devs[0].UUID
			// The other user plants before any mlpipe made the files.
			for _, name := range []string{allocLock(e), gpuLock(e)} {
				if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					t.Fatal(err)
				}
			}
			tt.plant(t, e)

			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			exercise := func(l runner.GPULease) {
				l.SetHolder("container:c0ffee")
				for _, h := range a.Holders(devs) {
					if slices.Contains(l.UUIDs(), h.UUID) && h.Info.Container != "c0ffee" {
						t.Errorf("holder of %s: %+v, want container c0ffee", h.UUID, h.Info)
					}
				}
				Busy(dir, e.uuid)
				l.Release()
			}
			switch {
			case tt.allocRefused:
				_, err := a.Acquire(ctx, runner.GPURequest{RunID: "r", Task: "t", Count: 1})
				if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "symbolic link") {
					t.Errorf("Acquire with a planted alloc.lock: %v, want a clear refusal", err)
				}
			case tt.gpuRefused:
				short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
				l, err := a.Acquire(short, runner.GPURequest{RunID: "r", Task: "all", Count: 8})
				cancelShort()
				if err == nil {
					t.Errorf("leased all 8 GPUs, %s through the planted file", e.uuid)
					exercise(l)
				}
				l, err = a.Acquire(ctx, runner.GPURequest{RunID: "r", Task: "seven", Count: 7})
				if err != nil {
					t.Fatalf("the 7 other GPUs: %v", err)
				}
				if slices.Contains(l.UUIDs(), e.uuid) {
					t.Errorf("leased %s through the planted file", e.uuid)
				}
				exercise(l)
			default:
				l, err := a.Acquire(ctx, runner.GPURequest{RunID: "r", Task: "all", Count: 8})
				if err != nil {
					t.Fatal(err)
				}
				exercise(l)
			}
			a.Holders(devs)

			b, err := os.ReadFile(e.victim)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(precious, string(b)); diff != "" {
				t.Errorf("the victim's file changed (-want +got):\n%s", diff)
			}
			if _, err := os.Lstat(e.missing); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a file was created through a dangling link: %v", err)
			}
		})
	}
}

// TestSecurityLeaseRefusesForeignLockDir: a lock directory that another
// unprivileged user owns (or made first) is refused with a message that
// says how to set one up, and is not chmod-ed; a symbolic link is refused;
// the user's own directory is accepted, created world-writable and sticky
// when missing.
func TestSecurityLeaseRefusesForeignLockDir(t *testing.T) {
	const nobody = 65534
	type state struct {
		Mode os.FileMode
		UID  uint32
	}
	me := uint32(os.Geteuid())
	tests := []struct {
		name    string
		foreign bool // needs root to chown
		setup   func(t *testing.T, path string)
		wantErr []string // substrings; nil: accepted
		want    state    // the directory afterwards (the link's target for a link)
	}{
		{
			name: "missing: created 0755",
			want: state{os.ModeDir | createdMode(), me},
		},
		{
			name:  "own, private: left alone",
			setup: func(t *testing.T, p string) { mkdir(t, p, 0o700, -1) },
			want:  state{os.ModeDir | 0o700, me},
		},
		{
			name:  "own, writable by others: made sticky",
			setup: func(t *testing.T, p string) { mkdir(t, p, 0o777, -1) },
			want:  state{os.ModeDir | os.ModeSticky | 0o777, me},
		},
		{
			name:    "another user's, sticky and world-writable",
			foreign: true,
			setup:   func(t *testing.T, p string) { mkdir(t, p, 0o777|os.ModeSticky, nobody) },
			wantErr: []string{"is owned by uid 65534", "not by root or you", "break GPU exclusivity", "`sudo mlpipe gpus setup`", "gpu.lock_dir"},
			want:    state{os.ModeDir | os.ModeSticky | 0o777, nobody},
		},
		{
			name:    "another user's, private",
			foreign: true,
			setup:   func(t *testing.T, p string) { mkdir(t, p, 0o755, nobody) },
			wantErr: []string{"is owned by uid 65534", "not by root or you"},
			want:    state{os.ModeDir | 0o755, nobody},
		},
		{
			name: "a symbolic link to the user's own directory",
			setup: func(t *testing.T, p string) {
				mkdir(t, p+".real", 0o700, -1)
				if err := os.Symlink(p+".real", p); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: []string{"is a symbolic link"},
			want:    state{os.ModeDir | 0o700, me},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.foreign && os.Geteuid() != 0 {
				t.Skip("needs root to give a directory to another user (CI runs the tests as root)")
			}
			path := filepath.Join(t.TempDir(), "mlpipe-gpus")
			if tt.setup != nil {
				tt.setup(t, path)
			}
			inv, err := Open(Options{Mock: "dgxa100"})
			if err != nil {
				t.Fatal(err)
			}
			defer inv.Close()
			a, err := NewAllocator(inv, AllocatorOptions{LockDir: path, Poll: 10 * time.Millisecond})
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != nil && err == nil:
				t.Fatalf("accepted, want an error with %q", tt.wantErr)
			case err != nil:
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
			default:
				l, err := a.Acquire(t.Context(), runner.GPURequest{Count: 1})
				if err != nil {
					t.Fatal(err)
				}
				l.Release()
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			got := state{fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("lock directory afterwards (-want +got):\n%s", diff)
			}
			if tt.wantErr != nil {
				if entries, _ := os.ReadDir(path); len(entries) != 0 {
					t.Errorf("files created in a refused directory: %v", entries)
				}
			}
		})
	}
}

// TestSecurityLockDirOwnership: who may use a lock directory, for users
// other than the one running the tests.
func TestSecurityLockDirOwnership(t *testing.T) {
	type verdict struct {
		Chmod   os.FileMode
		Refused string // the reason, "" when accepted
	}
	const sticky = syscall.S_ISVTX
	tests := []struct {
		name      string
		uid, mode uint32
		euid      int
		created   bool
		want      verdict
	}{
		{"own, created", 1000, 0o700, 1000, true, verdict{Chmod: 0o755}},
		{"root's, created", 0, 0o700, 0, true, verdict{Chmod: 0o755}},
		{"own, private", 1000, 0o700, 1000, false, verdict{}},
		{"own, sticky", 1000, sticky | 0o777, 1000, false, verdict{}},
		{"own, group-writable", 1000, 0o775, 1000, false, verdict{Chmod: os.ModeSticky | 0o775}},
		{"root's, sticky like /tmp", 0, sticky | 0o777, 1000, false, verdict{}},
		{"root's, read-only for others", 0, 0o755, 1000, false, verdict{}},
		{"root's, world-writable, not sticky", 0, 0o777, 1000, false, verdict{Refused: "without the sticky bit"}},
		{"root's, group-writable, not sticky", 0, 0o775, 1000, false, verdict{Refused: "without the sticky bit"}},
		{"another user's, sticky", 1001, sticky | 0o777, 1000, false, verdict{Refused: "owned by uid 1001"}},
		{"another user's, to root", 1001, 0o700, 0, false, verdict{Refused: "owned by uid 1001"}},
	}
	for _, tt := range tests {
		chmod, err := checkLockDir("/tmp/mlpipe-gpus", tt.uid, tt.mode, tt.euid, tt.created)
		got := verdict{Chmod: chmod}
		if err != nil {
			got.Refused = tt.want.Refused
			if !strings.Contains(err.Error(), tt.want.Refused) || tt.want.Refused == "" {
				got.Refused = err.Error()
			}
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

// mkdir makes a directory with exactly mode, given to uid unless -1.
func mkdir(t *testing.T, path string, mode os.FileMode, uid int) {
	t.Helper()
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	if uid >= 0 {
		if err := os.Chown(path, uid, -1); err != nil {
			t.Fatal(err)
		}
	}
}

// createdMode is the mode openLockDir gives a directory it creates: 0755
// for root too (a directory shared by users is made by Setup).
func createdMode() os.FileMode { return 0o755 }
