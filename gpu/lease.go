package gpu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mlpipe/mlpipe/internal/procfs"
	"github.com/mlpipe/mlpipe/runner"
)

// LeaseInfo is what a lease file records about its holder.
type LeaseInfo struct {
	UUID      string    `json:"uuid"`
	RunID     string    `json:"run_id"`
	Task      string    `json:"task"`
	PID       int       `json:"pid"`
	PIDStart  string    `json:"pid_start,omitempty"` // /proc/PID/stat field 22, against PID reuse
	Host      string    `json:"host"`
	Holder    string    `json:"holder,omitempty"` // "pid:N" or "container:ID" once the step runs
	Since     time.Time `json:"since"`
	Container string    `json:"container,omitempty"`
}

// AllocatorOptions configure an Allocator.
type AllocatorOptions struct {
	// LockDir holds alloc.lock and one gpu-<UUID>.lock per GPU.
	LockDir string
	// ContainerAlive reports whether a container still runs (Docker
	// steps can outlive a crashed mlpipe); nil: containers are not checked.
	ContainerAlive func(id string) bool
	// Poll is how often a waiting request retries when GPUs may have been
	// freed by another process (default 500 ms, jittered).
	Poll time.Duration
	// StarveAfter is how long a request may be overtaken by smaller ones
	// before the GPUs freed are reserved for it (default 30 s).
	StarveAfter time.Duration
	// SampleEvery is the telemetry interval while a step runs (500 ms).
	SampleEvery time.Duration
	Logger      *slog.Logger
}

// Allocator leases GPUs to steps, across goroutines and processes. It
// implements runner.GPUAllocator.
type Allocator struct {
	inv  Inventory
	opts AllocatorOptions
	host string

	mu      sync.Mutex
	held    map[string]*lease // UUIDs this process holds
	waiters []*waiter
	seq     int
	wake    chan struct{} // closed and replaced when GPUs are released here
}

var _ runner.GPUAllocator = (*Allocator)(nil)

type waiter struct {
	req   Request
	seq   int
	since time.Time
}

// NewAllocator returns an allocator over an inventory.
func NewAllocator(inv Inventory, opts AllocatorOptions) (*Allocator, error) {
	if opts.LockDir == "" {
		opts.LockDir = filepath.Join(os.TempDir(), "mlpipe-gpus")
	}
	if opts.Poll <= 0 {
		opts.Poll = 500 * time.Millisecond
	}
	if opts.StarveAfter <= 0 {
		opts.StarveAfter = 30 * time.Second
	}
	if opts.SampleEvery <= 0 {
		opts.SampleEvery = 500 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// World-writable with the sticky bit, so that several users of one
	// workstation share the leases.
	if err := os.MkdirAll(opts.LockDir, 0o1777); err != nil {
		return nil, fmt.Errorf("create GPU lock directory: %w", err)
	}
	_ = os.Chmod(opts.LockDir, 0o1777|os.ModeSticky)
	host, _ := os.Hostname()
	return &Allocator{inv: inv, opts: opts, host: host, held: map[string]*lease{}, wake: make(chan struct{})}, nil
}

// Inventory returns the allocator's inventory.
func (a *Allocator) Inventory() Inventory { return a.inv }

func toRequest(r runner.GPURequest) Request { return Request{Count: r.Count, Type: r.Type} }

// Check implements runner.GPUAllocator: can the request ever be met here?
func (a *Allocator) Check(r runner.GPURequest) error {
	devs, err := a.inv.Devices()
	if err != nil {
		return err
	}
	req := toRequest(r)
	n := 0
	var names []string
	seen := map[string]bool{}
	for _, d := range devs {
		if !seen[d.Name] {
			seen[d.Name] = true
			names = append(names, d.Name)
		}
		if Matches(d, req.Type) && !(d.MIGEnabled && d.Parent == "") && !(req.Count > 1 && d.Parent != "") {
			n++
		}
	}
	if n < req.Count {
		desc := "any GPU"
		if !genericType(req.Type) {
			desc = "GPU type " + req.Type
		}
		return fmt.Errorf("%w: it needs %d GPU(s) of %s but this machine has %d such (%d GPU(s): %s)", ErrInsufficient, req.Count, desc, n, len(devs), strings.Join(names, ", "))
	}
	return nil
}

// Acquire implements runner.GPUAllocator: it blocks until the request's
// GPUs are free, then leases them.
func (a *Allocator) Acquire(ctx context.Context, r runner.GPURequest) (runner.GPULease, error) {
	if err := a.Check(r); err != nil {
		return nil, err
	}
	req := toRequest(r)
	a.mu.Lock()
	a.seq++
	w := &waiter{req: req, seq: a.seq, since: time.Now()}
	a.waiters = append(a.waiters, w)
	a.mu.Unlock()
	defer a.removeWaiter(w)
	noted := false
	for {
		a.mu.Lock()
		wake := a.wake
		mayTry := a.mayTryLocked(w)
		a.mu.Unlock()
		if mayTry {
			l, skipped, err := a.tryAcquire(r)
			if err != nil {
				return nil, err
			}
			if l != nil {
				return l, nil
			}
			if len(skipped) > 0 && !noted {
				noted = true
				a.opts.Logger.Warn("GPUs skipped", "task", r.Task, "why", strings.Join(skipped, "; "))
			}
		}
		// Wait for a release here, or poll for other processes'.
		d := a.opts.Poll/2 + time.Duration(rand.Int64N(int64(a.opts.Poll)))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, context.Cause(ctx)
		case <-wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// mayTryLocked implements head-of-line reservation: once the oldest
// waiter that asks for more GPUs than w has waited past StarveAfter, only
// it may take GPUs.
func (a *Allocator) mayTryLocked(w *waiter) bool {
	now := time.Now()
	for _, o := range a.waiters {
		if o == w {
			return true
		}
		if now.Sub(o.since) > a.opts.StarveAfter && o.req.Count > w.req.Count {
			return false
		}
	}
	return true
}

func (a *Allocator) removeWaiter(w *waiter) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, o := range a.waiters {
		if o == w {
			a.waiters = append(a.waiters[:i], a.waiters[i+1:]...)
			return
		}
	}
}

// tryAcquire makes one attempt under the machine-wide alloc.lock: refresh
// the devices, find the free ones, choose, lock them, write the leases.
func (a *Allocator) tryAcquire(r runner.GPURequest) (*lease, []string, error) {
	global, err := lockFile(filepath.Join(a.opts.LockDir, "alloc.lock"), true)
	if err != nil {
		return nil, nil, fmt.Errorf("GPU allocation lock: %w", err)
	}
	defer global.Close()
	devs, err := a.inv.Devices()
	if err != nil {
		return nil, nil, err
	}
	own := ownPIDs()
	req := toRequest(r)
	eligible, skipped := Eligible(devs, req, own)
	a.mu.Lock()
	defer a.mu.Unlock()
	// A GPU is free when nobody here holds it, its lock can be taken, and
	// no live container is recorded on it; a MIG device and its GPU
	// exclude each other.
	busyParents := map[string]bool{}
	for u := range a.held {
		for _, d := range devs {
			if d.UUID == u && d.Parent != "" {
				busyParents[d.Parent] = true
			}
			if d.Parent == u {
				busyParents[u] = true
			}
		}
	}
	var free []Device
	locks := map[string]*os.File{}
	for _, d := range eligible {
		if a.held[d.UUID] != nil || a.held[d.Parent] != nil || busyParents[d.UUID] {
			continue
		}
		f, err := lockFile(a.lockPath(d.UUID), false)
		if err != nil {
			continue // held by another process (or its step)
		}
		if a.staleCheck(d.UUID) {
			locks[d.UUID] = f
			free = append(free, d)
		} else {
			f.Close()
		}
	}
	chosen := Choose(free, req.Count, a.inv.Topology())
	keep := map[string]bool{}
	for _, d := range chosen {
		keep[d.UUID] = true
	}
	for u, f := range locks {
		if !keep[u] {
			f.Close()
		}
	}
	if chosen == nil {
		return nil, skipped, nil
	}
	l := &lease{a: a, run: r.RunID, task: r.Task}
	for _, d := range chosen {
		l.uuids = append(l.uuids, d.UUID)
		l.files = append(l.files, locks[d.UUID])
		a.held[d.UUID] = l
	}
	l.writeInfo("")
	return l, skipped, nil
}

func (a *Allocator) lockPath(uuid string) string {
	return filepath.Join(a.opts.LockDir, "gpu-"+uuid+".lock")
}

func (a *Allocator) infoPath(uuid string) string {
	return filepath.Join(a.opts.LockDir, "gpu-"+uuid+".lease.json")
}

// staleCheck runs when a GPU's lock could be taken: a lease file left by a
// dead holder is removed, unless it names a container that still runs.
// It reports whether the GPU is free.
func (a *Allocator) staleCheck(uuid string) bool {
	b, err := os.ReadFile(a.infoPath(uuid))
	if err != nil {
		return true
	}
	var info LeaseInfo
	if json.Unmarshal(b, &info) == nil && info.Container != "" && a.opts.ContainerAlive != nil && info.Host == a.host {
		if a.opts.ContainerAlive(info.Container) {
			return false
		}
	}
	_ = os.Remove(a.infoPath(uuid))
	return true
}

func (a *Allocator) release(l *lease) {
	a.mu.Lock()
	for _, u := range l.uuids {
		if a.held[u] == l {
			delete(a.held, u)
		}
		_ = os.Remove(a.infoPath(u))
	}
	for _, f := range l.files {
		f.Close()
	}
	close(a.wake)
	a.wake = make(chan struct{})
	a.mu.Unlock()
}

// lease is a set of leased GPUs.
type lease struct {
	a        *Allocator
	run      string
	task     string
	uuids    []string
	files    []*os.File
	once     sync.Once
	holder   string
	released bool
}

func (l *lease) UUIDs() []string { return append([]string(nil), l.uuids...) }

// Files returns the locked lock files: a child process that inherits them
// keeps the GPUs leased as long as it lives, even if mlpipe dies.
func (l *lease) Files() []runner.ExtraFile {
	out := make([]runner.ExtraFile, len(l.files))
	for i, f := range l.files {
		out[i] = f
	}
	return out
}

// SetHolder records the process or container that runs on the GPUs.
func (l *lease) SetHolder(id string) {
	l.holder = id
	l.writeInfo(id)
}

func (l *lease) writeInfo(holder string) {
	pid := os.Getpid()
	for _, u := range l.uuids {
		info := LeaseInfo{UUID: u, RunID: l.run, Task: l.task, PID: pid, PIDStart: procfs.StartTime(pid), Host: l.a.host, Holder: holder, Since: time.Now()}
		if c, ok := strings.CutPrefix(holder, "container:"); ok {
			info.Container = c
		}
		b, _ := json.MarshalIndent(info, "", "  ")
		tmp := l.a.infoPath(u) + ".tmp"
		if os.WriteFile(tmp, b, 0o644) == nil {
			_ = os.Rename(tmp, l.a.infoPath(u))
		}
	}
}

func (l *lease) Release() { l.once.Do(func() { l.a.release(l) }) }

// Holder is who holds a GPU, for `mlpipe gpus`.
type Holder struct {
	UUID string    `json:"uuid"`
	Info LeaseInfo `json:"lease"`
	Live bool      `json:"live"`
}

// Holders lists the GPUs that are leased now, by any mlpipe process.
func (a *Allocator) Holders(devs []Device) []Holder {
	var out []Holder
	for _, d := range devs {
		if h, ok := a.holder(d.UUID); ok {
			out = append(out, h)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UUID < out[j].UUID })
	return out
}

func (a *Allocator) holder(uuid string) (Holder, bool) {
	a.mu.Lock()
	mine := a.held[uuid]
	a.mu.Unlock()
	locked := mine != nil
	if !locked {
		if f, err := lockFile(a.lockPath(uuid), false); err == nil {
			f.Close()
		} else {
			locked = true
		}
	}
	b, err := os.ReadFile(a.infoPath(uuid))
	var info LeaseInfo
	if err == nil {
		_ = json.Unmarshal(b, &info)
	}
	if !locked && info.Container != "" && a.opts.ContainerAlive != nil && a.opts.ContainerAlive(info.Container) {
		locked = true
	}
	if !locked {
		return Holder{}, false
	}
	info.UUID = uuid
	return Holder{UUID: uuid, Info: info, Live: true}, true
}

// Busy reports whether a GPU is leased by anyone (used by the mock to fill
// in utilisation).
func Busy(lockDir, uuid string) bool {
	f, err := lockFile(filepath.Join(lockDir, "gpu-"+uuid+".lock"), false)
	if err != nil {
		return errors.Is(err, errLocked)
	}
	f.Close()
	return false
}

var errLocked = errors.New("locked")

// lockFile opens path and takes an exclusive flock on it (blocking, or
// failing with errLocked).
func lockFile(path string, block bool) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_EX
	if !block {
		how |= syscall.LOCK_NB
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, err
	}
	return f, nil
}

// ownPIDs lists this process and its descendants (the steps it runs),
// whose GPU use is not foreign.
func ownPIDs() map[int]bool {
	own := map[int]bool{os.Getpid(): true}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return own
	}
	parent := map[int]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := procfs.ReadStat(pid); err == nil {
			parent[pid] = st.PPID
		}
	}
	for changed := true; changed; {
		changed = false
		for pid, pp := range parent {
			if own[pp] && !own[pid] {
				own[pid] = true
				changed = true
			}
		}
	}
	return own
}
