//go:build linux && cgo

package gpu

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mlpipe/mlpipe/internal/procfs"
	"github.com/mlpipe/mlpipe/runner"
)

func newPolicyAllocator(t *testing.T, dir string, opts AllocatorOptions) *Allocator {
	t.Helper()
	inv, err := Open(Options{Mock: "dgxa100"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inv.Close() })
	opts.LockDir = dir
	if opts.Poll == 0 {
		opts.Poll = 10 * time.Millisecond
	}
	a, err := NewAllocator(inv, opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Fairness across processes: a stream of 1-GPU steps of one allocator (one
// mlpipe process) cannot starve the 8-GPU step of another, which waits in
// the shared queue.
func TestBigRequestOfAnotherProcessIsNotStarved(t *testing.T) {
	dir := t.TempDir()
	a1 := newPolicyAllocator(t, dir, AllocatorOptions{StarveAfter: 100 * time.Millisecond})
	a2 := newPolicyAllocator(t, dir, AllocatorOptions{StarveAfter: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				l, err := a1.Acquire(ctx, runner.GPURequest{Count: 1, RunID: "stream", Task: "small"})
				if err != nil {
					return
				}
				time.Sleep(15 * time.Millisecond)
				l.Release()
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	var msgs []string
	var mu sync.Mutex
	c, cancelBig := context.WithTimeout(ctx, 5*time.Second)
	defer cancelBig()
	l, err := a2.Acquire(c, runner.GPURequest{Count: 8, RunID: "r2", Task: "big", Waiting: func(m string) {
		mu.Lock()
		msgs = append(msgs, m)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatalf("the 8-GPU step of the other process starved: %v", err)
	}
	l.Release()
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(msgs) == 0 || !strings.Contains(msgs[0], "waiting for 8 GPU(s): ") || !strings.Contains(strings.Join(msgs, "\n"), "(run stream, task small)") {
		t.Errorf("waiting messages do not say who holds the GPUs: %q", msgs)
	}
	if q := a2.Queue(); len(q) != 0 {
		t.Errorf("tickets left in the queue: %+v", q)
	}
}

// The machine policy: excluded GPUs are never leased, and one user's
// processes hold at most MaxPerUser GPUs at once, counted across processes.
func TestExcludedGPUsAndPerUserLimit(t *testing.T) {
	dir := t.TempDir()
	devs, _ := newPolicyAllocator(t, dir, AllocatorOptions{}).Inventory().Devices()
	policy := AllocatorOptions{Exclude: []string{"0", devs[1].UUID}, MaxPerUser: 4}
	a1 := newPolicyAllocator(t, dir, policy)
	a2 := newPolicyAllocator(t, dir, policy)
	if err := a1.Check(runner.GPURequest{Count: 5}); !errors.Is(err, ErrInsufficient) || !strings.Contains(err.Error(), "allows 4 per user") {
		t.Errorf("Check(5) = %v", err)
	}
	l1, err := a1.Acquire(t.Context(), runner.GPURequest{Count: 3, RunID: "r1", Task: "a"})
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Release()
	for _, u := range l1.UUIDs() {
		if u == devs[0].UUID || u == devs[1].UUID {
			t.Errorf("excluded GPU %s leased", u)
		}
	}
	// Another process of the same user: 3 held + 2 asked > 4.
	var msg string
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := a2.Acquire(ctx, runner.GPURequest{Count: 2, RunID: "r2", Task: "b", Waiting: func(m string) { msg = m }}); err == nil {
		t.Fatal("the per-user limit let a second process take 2 more GPUs")
	}
	if !strings.Contains(msg, "holds 3 of the 4 GPU(s) this machine allows per user") {
		t.Errorf("waiting message %q", msg)
	}
	l2, err := a2.Acquire(t.Context(), runner.GPURequest{Count: 1, RunID: "r2", Task: "c"})
	if err != nil {
		t.Fatalf("1 more GPU within the limit: %v", err)
	}
	l2.Release()
	// Excluded GPUs leave 6: a request for 7 can never be met.
	a3 := newPolicyAllocator(t, dir, AllocatorOptions{Exclude: policy.Exclude})
	if err := a3.Check(runner.GPURequest{Count: 7}); !errors.Is(err, ErrInsufficient) {
		t.Errorf("Check(7) with 2 excluded = %v", err)
	}
	info, ok := a2.peek(l1.UUIDs()[0])
	if !ok || info.UID != os.Getuid() || info.User == "" || info.RunID != "r1" {
		t.Errorf("holder record %+v lacks the user", info)
	}
}

// The owner's setup: a root-owned 0755 directory whose lock files are
// root-owned 0666; run again, it creates nothing.
func TestSetupSharedLockDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CI runs as root)")
	}
	dir := filepath.Join(t.TempDir(), "gpus")
	inv, err := Open(Options{Mock: "dgxa100"})
	if err != nil {
		t.Fatal(err)
	}
	defer inv.Close()
	devs, _ := inv.Devices()
	old := syscall.Umask(0o077)
	created, err := Setup(dir, devs)
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != len(devs)+2 || !slices.Contains(created, "alloc.lock") || !slices.Contains(created, "queue") {
		t.Errorf("created %v", created)
	}
	st, _ := os.Stat(dir)
	if st.Mode().Perm() != 0o755 || st.Mode()&os.ModeSticky != 0 {
		t.Errorf("directory mode %v, want 0755", st.Mode())
	}
	for _, n := range created {
		var s syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, n), &s); err != nil || s.Uid != 0 || s.Mode&0o777 != 0o666 {
			t.Errorf("%s: uid %d mode %o (%v), want root 0666", n, s.Uid, s.Mode&0o777, err)
		}
	}
	again, err := Setup(dir, devs)
	if err != nil || len(again) != 0 {
		t.Errorf("second setup created %v (%v)", again, err)
	}
}

// The shared queue file is parsed defensively: lines that do not parse,
// tickets without an id or a count, an over-long line and anything beyond
// the size bound are dropped, and tickets of dead processes of this host go.
func TestSecurityQueueParsedDefensively(t *testing.T) {
	dir := t.TempDir()
	a := newPolicyAllocator(t, dir, AllocatorOptions{})
	f, err := os.Create(filepath.Join(dir, "queue"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	now := time.Now()
	live := Ticket{ID: "live", PID: os.Getpid(), PIDStart: procfs.StartTime(os.Getpid()), Host: a.host, Count: 2, Since: now}
	dead := Ticket{ID: "dead", PID: 999999999, Host: a.host, Count: 1, Since: now}
	other := Ticket{ID: "other-host", PID: 1, Host: "elsewhere", Count: 1, Since: now.Add(-time.Second)}
	var b strings.Builder
	for _, tk := range []Ticket{live, dead, other} {
		line, _ := json.Marshal(tk)
		b.Write(line)
		b.WriteString("\n")
	}
	b.WriteString("not json\n{\"id\":\"\",\"count\":3}\n{\"id\":\"zero\",\"count\":0}\n")
	b.WriteString(`{"id":"long","count":1,"user":"` + strings.Repeat("x", 100<<10) + "\"}\n")
	if _, err := f.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tk := range a.Queue() {
		got = append(got, tk.ID)
	}
	// Only "live" is left: a ticket of another host is stale (the
	// directory is this machine's), and so is one of a dead process.
	if want := []string{"live"}; !slices.Equal(got, want) {
		t.Errorf("queue = %v, want %v", got, want)
	}
}

// A waiting request that its own user's limit keeps from being served does
// not reserve the GPUs freed for it: the others are served meanwhile.
func TestOverLimitRequestDoesNotBlockOthers(t *testing.T) {
	dir := t.TempDir()
	a1 := newPolicyAllocator(t, dir, AllocatorOptions{MaxPerUser: 2, StarveAfter: 20 * time.Millisecond})
	a2 := newPolicyAllocator(t, dir, AllocatorOptions{MaxPerUser: 3, StarveAfter: 20 * time.Millisecond})
	l, err := a1.Acquire(t.Context(), runner.GPURequest{Count: 2, RunID: "r1", Task: "held"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { _, _ = a1.Acquire(ctx, runner.GPURequest{Count: 2, RunID: "r1", Task: "over-limit"}) }()
	time.Sleep(100 * time.Millisecond) // past StarveAfter
	c, cancel2 := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel2()
	l2, err := a2.Acquire(c, runner.GPURequest{Count: 1, RunID: "r2", Task: "small"})
	if err != nil {
		t.Fatalf("a request within the limits waited behind one over its user's limit: %v", err)
	}
	l2.Release()
}
