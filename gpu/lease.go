package gpu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mlpipe/mlpipe/contract"
	"github.com/mlpipe/mlpipe/internal/procfs"
)

// LeaseInfo is what a GPU's lock file records about its holder. The
// record is kept inside the lock file itself and only written through the
// descriptor that holds the lock, so nothing is ever created or replaced
// by name in the (possibly shared) lock directory.
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
	// The user whose mlpipe holds the lease.
	User string `json:"user,omitempty"`
	UID  int    `json:"uid"`
}

// AllocatorOptions configure an Allocator.
type AllocatorOptions struct {
	// LockDir holds alloc.lock, the queue and one gpu-<UUID>.lock per GPU
	// (default: DefaultLockDir). It must be a real directory owned by root
	// (and not writable by others unless sticky, like /tmp) or by the
	// current user; it is created if missing (the owner's shared
	// directory: see Setup).
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
	// Exclude lists GPUs never leased (UUIDs or indexes): the machine
	// policy keeps them for interactive use.
	Exclude []string
	// MaxPerUser bounds the GPUs one user's mlpipe processes hold at once
	// (0: no limit).
	MaxPerUser int
	Logger     *slog.Logger
}

// Allocator leases GPUs to steps, across goroutines and processes. It
// implements contract.GPUAllocator.
type Allocator struct {
	inv  Inventory
	opts AllocatorOptions
	host string
	dir  *os.File // LockDir, opened once and checked; files are opened relative to it
	uid  int
	user string
	// canCreate: this process may add files to LockDir (not so in the
	// owner's root-owned directory); multiUser: other users share it, so
	// the files this process creates there are made 0666 for them.
	canCreate, multiUser bool

	mu      sync.Mutex
	held    map[string]*lease // UUIDs this process holds
	waiters []*waiter
	seq     int
	wake    chan struct{} // closed and replaced when GPUs are released here
}

var _ contract.GPUAllocator = (*Allocator)(nil)

type waiter struct {
	req       Request
	seq       int
	since     time.Time
	run, task string
	ticket    string // in the queue file (queue.go)
}

// NewAllocator returns an allocator over an inventory.
func NewAllocator(inv Inventory, opts AllocatorOptions) (*Allocator, error) {
	if opts.LockDir == "" {
		opts.LockDir = DefaultLockDir().Dir
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
	dir, err := openLockDir(opts.LockDir)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	a := &Allocator{inv: inv, opts: opts, host: host, dir: dir, held: map[string]*lease{}, wake: make(chan struct{}), uid: os.Getuid()}
	a.user = strconv.Itoa(a.uid)
	if u, err := user.LookupId(a.user); err == nil && u.Username != "" {
		a.user = u.Username
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(dir.Fd()), &st); err == nil {
		a.canCreate = int(st.Uid) == os.Geteuid() || st.Mode&0o002 != 0
		a.multiUser = st.Uid == 0 || st.Mode&0o002 != 0
	}
	return a, nil
}

// Inventory returns the allocator's inventory.
func (a *Allocator) Inventory() Inventory { return a.inv }

func toRequest(r contract.GPURequest) Request { return Request{Count: r.Count, Type: r.Type} }

// Check implements contract.GPUAllocator: can the request ever be met here?
func (a *Allocator) Check(r contract.GPURequest) error {
	devs, err := a.inv.Devices()
	if err != nil {
		return err
	}
	req := toRequest(r)
	if a.opts.MaxPerUser > 0 && req.Count > a.opts.MaxPerUser {
		return fmt.Errorf("%w: it asks for %d GPU(s), and this machine allows %d per user (gpu.max_per_user)", ErrInsufficient, req.Count, a.opts.MaxPerUser)
	}
	n := 0
	var names []string
	seen := map[string]bool{}
	for _, d := range a.usable(devs) {
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

// Acquire implements contract.GPUAllocator: it blocks until the request's
// GPUs are free, then leases them.
func (a *Allocator) Acquire(ctx context.Context, r contract.GPURequest) (contract.GPULease, error) {
	if err := a.Check(r); err != nil {
		return nil, err
	}
	req := toRequest(r)
	a.mu.Lock()
	a.seq++
	w := &waiter{req: req, seq: a.seq, since: time.Now(), run: r.RunID, task: r.Task}
	a.waiters = append(a.waiters, w)
	a.mu.Unlock()
	defer a.removeWaiter(w)
	defer func() { a.dropTicket(w, false) }()
	noted := false
	told := ""
	for {
		a.mu.Lock()
		wake := a.wake
		mayTry := a.mayTryLocked(w)
		a.mu.Unlock()
		if mayTry {
			l, skipped, why, err := a.tryAcquire(r, w)
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
			if why != told && why != "" && r.Waiting != nil {
				r.Waiting(fmt.Sprintf("waiting for %d GPU(s): %s", req.Count, why))
			}
			told = why
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

// tryAcquire makes one attempt under the machine-wide alloc.lock: take
// w's turn in the queue, refresh the devices, find the free ones, check the
// per-user limit, choose, lock them, write the leases. When it gets none,
// why says what it waits for.
func (a *Allocator) tryAcquire(r contract.GPURequest, w *waiter) (l *lease, skipped []string, why string, err error) {
	global, err := a.lockFile(allocLockName, true, false)
	if err != nil {
		return nil, nil, "", fmt.Errorf("GPU allocation lock: %w", err)
	}
	defer global.Close()
	if ok, behind := a.queueTurn(w); !ok {
		return nil, nil, behind, nil
	}
	devs, err := a.inv.Devices()
	if err != nil {
		return nil, nil, "", err
	}
	var own map[int]bool // a /proc walk: only when some GPU runs processes
	for _, d := range devs {
		if len(d.Processes) > 0 {
			own = ownPIDs()
			break
		}
	}
	req := toRequest(r)
	eligible, skipped := Eligible(a.usable(devs), req, own)
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
	var others []LeaseInfo // holders of the eligible GPUs that are not free
	locks := map[string]*os.File{}
	for _, d := range eligible {
		if a.held[d.UUID] != nil || a.held[d.Parent] != nil || busyParents[d.UUID] {
			continue
		}
		f, err := a.lockFile(lockName(d.UUID), false, true)
		if err != nil {
			if errors.Is(err, errLocked) {
				if info, ok := a.peek(d.UUID); ok {
					others = append(others, info)
				}
			} else {
				skipped = append(skipped, fmt.Sprintf("%s: %v", d.UUID, err))
			}
			continue // held by another process (or its step), or refused
		}
		if a.staleCheck(f) {
			locks[d.UUID] = f
			free = append(free, d)
		} else {
			f.Close()
		}
	}
	if a.opts.MaxPerUser > 0 {
		if mine := a.heldByUser(devs); mine+req.Count > a.opts.MaxPerUser {
			for _, f := range locks {
				f.Close()
			}
			return nil, skipped, fmt.Sprintf("%s holds %d of the %d GPU(s) this machine allows per user", a.user, mine, a.opts.MaxPerUser), nil
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
		why = fmt.Sprintf("%d of %d free", len(free), len(eligible))
		if h := describeHolders(others); h != "" {
			why += ", held by " + h
		}
		return nil, skipped, why, nil
	}
	l = &lease{a: a, run: r.RunID, task: r.Task}
	for _, d := range chosen {
		l.uuids = append(l.uuids, d.UUID)
		l.files = append(l.files, locks[d.UUID])
		a.held[d.UUID] = l
	}
	l.writeInfo("")
	a.dropTicket(w, true)
	return l, skipped, "", nil
}

func lockName(uuid string) string { return "gpu-" + uuid + ".lock" }

func (a *Allocator) lockPath(uuid string) string {
	return filepath.Join(a.opts.LockDir, lockName(uuid))
}

// staleCheck runs when a GPU's lock could be taken (f holds it): a holder
// record left by a dead holder is cleared, unless it names a container
// that still runs. It reports whether the GPU is free.
func (a *Allocator) staleCheck(f *os.File) bool {
	info, ok := readInfo(f)
	if ok && info.Container != "" && a.opts.ContainerAlive != nil && info.Host == a.host {
		if a.opts.ContainerAlive(info.Container) {
			return false
		}
	}
	if ok {
		_ = f.Truncate(0)
	}
	return true
}

func (a *Allocator) release(l *lease) {
	a.mu.Lock()
	for _, u := range l.uuids {
		if a.held[u] == l {
			delete(a.held, u)
		}
	}
	for _, f := range l.files {
		_ = f.Truncate(0) // the record, while the lock is still held
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
func (l *lease) Files() []contract.ExtraFile {
	out := make([]contract.ExtraFile, len(l.files))
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

// writeInfo records the holder in each GPU's lock file, through the
// descriptor that holds its lock. The new record is written over the old
// one before the file is cut to its length, so a reader sees one whole
// record followed at most by a tail it ignores, or retries a torn read.
func (l *lease) writeInfo(holder string) {
	pid := os.Getpid()
	for i, u := range l.uuids {
		info := LeaseInfo{UUID: u, RunID: l.run, Task: l.task, PID: pid, PIDStart: procfs.StartTime(pid), Host: l.a.host, Holder: holder, Since: time.Now(),
			User: l.a.user, UID: l.a.uid}
		if c, ok := strings.CutPrefix(holder, "container:"); ok {
			info.Container = c
		}
		b, _ := json.MarshalIndent(info, "", "  ")
		b = append(b, '\n')
		f := l.files[i]
		if _, err := f.WriteAt(b, 0); err == nil {
			_ = f.Truncate(int64(len(b)))
		}
	}
}

// maxInfo bounds what is read of a lock file.
const maxInfo = 64 << 10

// readInfo reads the holder record at the start of a lock file; ok is
// false when there is none (or none that parses).
func readInfo(f *os.File) (info LeaseInfo, ok bool) {
	for try := 0; ; try++ {
		b, err := io.ReadAll(io.NewSectionReader(f, 0, maxInfo))
		if err != nil || len(bytes.TrimSpace(b)) == 0 {
			return LeaseInfo{}, false
		}
		info = LeaseInfo{}
		if json.NewDecoder(bytes.NewReader(b)).Decode(&info) == nil {
			return info, true
		}
		if try == 4 {
			return LeaseInfo{}, false
		}
		time.Sleep(2 * time.Millisecond) // a holder rewriting it
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
	var info LeaseInfo
	if !locked {
		f, err := openInDir(a.dir, a.opts.LockDir, lockName(uuid), syscall.O_RDONLY, false)
		if errors.Is(err, fs.ErrNotExist) {
			return Holder{}, false // never leased
		}
		if err == nil {
			err = flock(f, false)
			if err == nil {
				info, _ = readInfo(f) // nobody writes it without the lock
			}
			f.Close()
		}
		locked = err != nil
	}
	if locked {
		if f, err := openInDir(a.dir, a.opts.LockDir, lockName(uuid), syscall.O_RDONLY, false); err == nil {
			info, _ = readInfo(f)
			f.Close()
		}
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
	f, err := openInDir(nil, lockDir, lockName(uuid), syscall.O_RDONLY, false)
	if err != nil {
		return false
	}
	err = flock(f, false)
	f.Close()
	return errors.Is(err, errLocked)
}

var errLocked = errors.New("locked")

// lockFile opens name in the lock directory (creating it if create) and
// takes an exclusive flock on it (blocking, or failing with errLocked).
// GPU lock files are opened for writing: they carry the holder record.
func (a *Allocator) lockFile(name string, block, write bool) (*os.File, error) {
	flags := syscall.O_RDONLY
	if write {
		flags = syscall.O_RDWR
	}
	f, err := openInDir(a.dir, a.opts.LockDir, name, flags, a.canCreate)
	if write && errors.Is(err, syscall.EACCES) {
		// A file another user made without write permission for others
		// (an older mlpipe, a strict umask): lock it all the same; the
		// holder record then stays unwritten.
		f, err = openInDir(a.dir, a.opts.LockDir, name, syscall.O_RDONLY, false)
	}
	if errors.Is(err, fs.ErrNotExist) && !a.canCreate {
		return nil, fmt.Errorf("%s is not in the shared GPU lease directory %s (a GPU added after the setup?): have the workstation's owner run `sudo mlpipe gpus setup`", name, a.opts.LockDir)
	}
	if err != nil {
		return nil, err
	}
	a.shareFile(f)
	if err := flock(f, block); err != nil {
		f.Close()
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
