//go:build linux && cgo

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mlpipe/mlpipe/metadata"
)

// A GPU workstation shared by Unix users: these tests create two users and
// run mlpipe as each (CI runs as root; .ci/run requires them with
// MLPIPE_REQUIRE_USERS=1), on go-nvml's 8-GPU mock, with the leases in a
// shared directory that root's first run sets up.

type unixUser struct {
	name     string
	uid, gid uint32
}

// requireUsers creates (once) and returns the test users.
func requireUsers(t *testing.T, names ...string) []unixUser {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("MLPIPE_REQUIRE_USERS") == "1" {
			t.Fatal("MLPIPE_REQUIRE_USERS=1 but the tests do not run as root: they cannot create Unix users")
		}
		t.Skip("needs root to create Unix users (set MLPIPE_REQUIRE_USERS=1 to make this a failure)")
	}
	var out []unixUser
	for _, n := range names {
		u, err := user.Lookup(n)
		if err != nil {
			if b, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", n).CombinedOutput(); err != nil {
				t.Fatalf("useradd %s: %v\n%s", n, err, b)
			}
			if u, err = user.Lookup(n); err != nil {
				t.Fatal(err)
			}
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		out = append(out, unixUser{name: n, uid: uint32(uid), gid: uint32(gid)})
	}
	return out
}

// workstation is a shared machine: a machine configuration, a lease
// directory, a binary every user may run, and a home per user.
type workstation struct {
	t       *testing.T
	base    string
	bin     string
	machine string
	pipes   map[string]string // name → pipeline directory
}

func newWorkstation(t *testing.T, policy string) *workstation {
	t.Helper()
	base := t.TempDir()
	for p := base; p != os.TempDir() && p != "/"; p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w := &workstation{t: t, base: base, pipes: map[string]string{}}
	// The binary, where every user can run it.
	w.bin = filepath.Join(base, "mlpipe")
	src, err := os.Open(mlpipeBin)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(w.bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	w.machine = filepath.Join(base, "machine.yaml")
	cfg := fmt.Sprintf("gpu:\n  lock_dir: %s\n%s", filepath.Join(base, "gpus"), policy)
	if err := os.WriteFile(w.machine, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// pipeline writes a pipeline of n steps × gpus GPUs that sleep seconds.
func (w *workstation) pipeline(name string, n, gpus int, seconds float64) string {
	dir := filepath.Join(w.base, "pipelines", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		w.t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\ntasks:\n", name)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  s%d: {component: c.yaml, inputs: {id: s%d, seconds: %g}, resources: {gpu: %d}, cache: false}\n", i, i, seconds, gpus)
	}
	for f, c := range map[string]string{"pipeline.yaml": b.String(), "c.yaml": gpuStep} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(c), 0o644); err != nil {
			w.t.Fatal(err)
		}
	}
	return dir
}

// command is mlpipe run as u (nil: root), in u's home.
func (w *workstation) command(u *unixUser, args ...string) (*exec.Cmd, string) {
	name, uid, gid := "root", uint32(0), uint32(0)
	if u != nil {
		name, uid, gid = u.name, u.uid, u.gid
	}
	home := filepath.Join(w.base, "home", name)
	if err := os.MkdirAll(home, 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.Chown(home, int(uid), int(gid)); err != nil {
		w.t.Fatal(err)
	}
	cmd := exec.Command(w.bin, args...)
	cmd.Dir = home
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + home, "USER=" + name,
		"MLPIPE_STATE_DIR=" + filepath.Join(home, "state"), "XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
		"MLPIPE_EXECUTOR=process", "MLPIPE_GPU_MOCK=dgxa100", "MLPIPE_MACHINE_CONFIG=" + w.machine}
	if u != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	}
	return cmd, filepath.Join(home, "state")
}

type userRun struct {
	cmd            *exec.Cmd
	state          string
	stdout, stderr lockedBuffer
}

// lockedBuffer is a bytes.Buffer written by the command's copying
// goroutine and read by the test while the command runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (w *workstation) start(u *unixUser, args ...string) *userRun {
	cmd, state := w.command(u, args...)
	r := &userRun{cmd: cmd, state: state}
	cmd.Stdout, cmd.Stderr = &r.stdout, &r.stderr
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	return r
}

func (r *userRun) wait(t *testing.T, who string) {
	t.Helper()
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", who, err, r.stdout.String(), r.stderr.String())
	}
}

// stepIntervals are the execute phases of every step a state dir's last
// run recorded, with their GPUs, keyed "who/task path".
func stepIntervals(t *testing.T, who, state string) map[string]interval {
	t.Helper()
	h, err := metadata.Open(filepath.Join(state, "mlpipe.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	r, err := h.ResolveRun(t.Context(), "latest")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]interval{}
	for k, v := range executeIntervals(t, h, r.ID) {
		out[who+"/"+k] = v
	}
	return out
}

// checkDisjoint fails when two steps that ran at the same time shared a GPU.
func checkDisjoint(t *testing.T, iv map[string]interval) {
	t.Helper()
	keys := make([]string, 0, len(iv))
	for k := range iv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, a := range keys {
		for _, b := range keys[i+1:] {
			x, y := iv[a], iv[b]
			if !(x.start.Before(y.end) && y.start.Before(x.end)) {
				continue
			}
			for _, g := range x.gpus {
				for _, h := range y.gpus {
					if g == h {
						t.Errorf("%s and %s held GPU %s at the same time", a, b, g)
					}
				}
			}
		}
	}
}

// maxHeld is the most GPUs the steps held at one instant.
func maxHeld(iv map[string]interval) int {
	best := 0
	for _, x := range iv {
		n := 0
		for _, y := range iv {
			if !y.start.After(x.start) && y.end.After(x.start) {
				n += len(y.gpus)
			}
		}
		best = max(best, n)
	}
	return best
}

// Root runs a GPU pipeline once on a fresh machine (and so sets up the
// shared lease directory); then two users run 4 × 2-GPU steps each at
// once: both succeed, no GPU is ever held by two steps, and the second wave
// waits for the first.
func TestSecurityTwoUsersShareEightGPUs(t *testing.T) {
	users := requireUsers(t, "mlpipe-alice", "mlpipe-bob")
	w := newWorkstation(t, "")
	rootRun := w.start(nil, "run", w.pipeline("warmup", 1, 2, 0.1))
	rootRun.wait(t, "root")
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(w.base, "gpus", "alloc.lock"), &st); err != nil || st.Uid != 0 || st.Mode&0o777 != 0o666 {
		t.Fatalf("root's run did not set up the shared lease directory: %v uid %d mode %o", err, st.Uid, st.Mode&0o777)
	}
	p := w.pipeline("sweep", 4, 2, 1.0)
	alice := w.start(&users[0], "run", p, "--max-parallel", "8")
	bob := w.start(&users[1], "run", p, "--max-parallel", "8")
	alice.wait(t, "alice")
	bob.wait(t, "bob")
	iv := stepIntervals(t, "alice", alice.state)
	for k, v := range stepIntervals(t, "bob", bob.state) {
		iv[k] = v
	}
	if len(iv) != 8 {
		t.Fatalf("%d steps ran, want 8", len(iv))
	}
	checkDisjoint(t, iv)
	if n := maxHeld(iv); n > 8 {
		t.Errorf("%d GPUs held at once on an 8-GPU machine", n)
	}
	if strings.Contains(alice.stderr.String()+bob.stderr.String(), "permission denied") {
		t.Errorf("a user was refused a lock file:\n%s\n%s", alice.stderr.String(), bob.stderr.String())
	}
}

// setup runs `mlpipe gpus setup` as root: the owner's one step.
func (w *workstation) setup() {
	cmd, _ := w.command(nil, "gpus", "setup")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "GPU leases of every user go to "+filepath.Join(w.base, "gpus")) {
		w.t.Fatalf("gpus setup: %v\n%s", err, out)
	}
}

// gpus runs `mlpipe gpus ARGS` as root.
func (w *workstation) gpus(args ...string) string {
	cmd, _ := w.command(nil, append([]string{"gpus"}, args...)...)
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// The machine policy: GPU 7 is never leased, and one user holds at most 4
// GPUs at once whatever their own configuration says.
func TestSecurityMachinePolicyLimitsUsers(t *testing.T) {
	users := requireUsers(t, "mlpipe-alice", "mlpipe-bob")
	w := newWorkstation(t, "  exclude: [\"7\"]\n  max_per_user: 4\n")
	// Without the owner's setup, users are told what to ask for.
	cmd, _ := w.command(&users[0], "run", w.pipeline("early", 1, 1, 0.1))
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "the workstation's owner must run `sudo mlpipe gpus setup` once") {
		t.Errorf("a user's run before the setup: %v\n%s", err, out)
	}
	w.setup()
	p := w.pipeline("sweep", 4, 2, 0.6)
	alice := w.start(&users[0], "run", p, "--max-parallel", "8")
	bob := w.start(&users[1], "run", w.pipeline("single", 3, 1, 0.6), "--max-parallel", "8")
	alice.wait(t, "alice")
	bob.wait(t, "bob")
	a := stepIntervals(t, "alice", alice.state)
	if n := maxHeld(a); n > 4 {
		t.Errorf("alice held %d GPUs at once; the machine allows 4", n)
	}
	all := stepIntervals(t, "bob", bob.state)
	for k, v := range a {
		all[k] = v
	}
	checkDisjoint(t, all)
	for k, v := range all {
		for _, g := range v.gpus {
			if strings.HasSuffix(g, "-000000000007") {
				t.Errorf("%s was given the excluded GPU %s", k, g)
			}
		}
	}
	if out := w.gpus("--output", "json"); !strings.Contains(out, `"excluded": true`) {
		t.Errorf("mlpipe gpus does not show the excluded GPU:\n%s", out)
	}
}

// SIGKILL of one user's mlpipe frees its GPUs for the other user, who
// meanwhile is told who holds them.
func TestSecurityKilledUsersGPUsGoToTheOther(t *testing.T) {
	users := requireUsers(t, "mlpipe-alice", "mlpipe-bob")
	w := newWorkstation(t, "")
	w.setup()
	alice := w.start(&users[0], "run", w.pipeline("hog", 4, 2, 120), "--max-parallel", "8")
	deadline := time.Now().Add(30 * time.Second)
	for {
		out := w.gpus("--user", "mlpipe-alice")
		if strings.Count(out, "mlpipe-alice: run") == 8 {
			break
		}
		if time.Now().After(deadline) {
			_ = alice.cmd.Process.Kill()
			t.Fatalf("alice never held the 8 GPUs:\n%s\n%s", out, alice.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	bob := w.start(&users[1], "run", w.pipeline("next", 1, 2, 0.1))
	for !strings.Contains(bob.stdout.String()+bob.stderr.String(), "held by mlpipe-alice") {
		if time.Now().After(deadline) {
			_ = alice.cmd.Process.Kill()
			t.Fatalf("bob is not told who holds the GPUs:\n%s\n%s", bob.stdout.String(), bob.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := alice.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = alice.cmd.Wait()
	done := make(chan error, 1)
	go func() { done <- bob.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("bob: %v\n%s", err, bob.stderr.String())
		}
	case <-time.After(60 * time.Second):
		_ = bob.cmd.Process.Kill()
		t.Fatalf("bob did not get the GPUs of alice's killed run:\n%s", bob.stderr.String())
	}
}
