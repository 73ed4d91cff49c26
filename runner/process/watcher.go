package process

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/mlpipe/mlpipe/internal/procfs"
)

// The watcher tears down the steps of an mlpipe process that dies without
// doing so itself (kill -9, a crash, the OOM killer).
//
// Each step runs in its own process group. Its leader dies with mlpipe
// (PR_SET_PDEATHSIG), but what the leader started (a shell's background
// jobs, a training script's workers, anything that ignores SIGTERM) would
// live on, with the GPU lease files it inherited. So the first process
// step of an mlpipe process starts a watcher: a copy of mlpipe, re-executed
// through /proc/self/exe, that blocks reading a pipe of which mlpipe holds
// the only write end. When mlpipe dies, however it dies, the watcher reads
// end of file, kills the process group of every step still running
// (SIGKILL to -pgid) and exits.
//
// The watcher learns the running steps from a table in memory shared with
// mlpipe (an unlinked file both map): mlpipe fills a slot before it starts
// a step, and frees it once the step's group is gone; the watcher reads
// the table only when mlpipe is gone. So a step costs a few stores to
// memory, no system call and no wake-up of the watcher; the watcher's own
// start (a Go program's, ~10 ms of CPU) is paid once per mlpipe process,
// when the executor is made. A watcher that dies is replaced at the next
// step, and reads the same table.
//
// A slot is pending from before the fork until the group is known (the
// fork, the exec and the store of the PGID): a step that mlpipe died
// starting is not yet a group the watcher can kill, so it kills the
// processes whose environment carries MLPIPE_RUN_ID of that run instead
// (procfs.KillOrphans), as the next mlpipe start would.

const (
	watcherArg0 = "mlpipe-step-watcher"
	watcherEnv  = "MLPIPE_STEP_WATCHER"

	slotSize  = 128 // state, pgid, run id length, run id (at most 64 bytes)
	slotCount = 4096
	slotFree  = 0
	slotStart = 1 // being started: the run id is valid, the pgid not yet
	slotRun   = 2 // running: the pgid is valid
)

// watcherAvailable is set by ServeWatcher: the executable knows how to be
// a watcher. Programs that never call ServeWatcher (the tests of other
// packages) run steps without one, as before.
var watcherAvailable atomic.Bool

// ServeWatcher must be the first thing main() does in a program that runs
// process steps. Started as a watcher, it watches and exits; otherwise it
// returns at once and lets the executor start watchers.
func ServeWatcher() {
	if len(os.Args) > 0 && os.Args[0] == watcherArg0 && os.Getenv(watcherEnv) == "1" {
		// Ctrl-C in the terminal, a hang-up or a stray SIGTERM must not
		// end the watcher before mlpipe: only the end of the pipe does.
		signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGPIPE)
		_, _ = io.Copy(io.Discard, os.Stdin)
		killTable(os.NewFile(3, "steps"))
		os.Exit(0)
	}
	watcherAvailable.Store(true)
}

// killTable kills the steps the table says are running (mlpipe is gone).
func killTable(table *os.File) {
	buf := make([]byte, slotSize*slotCount)
	n, _ := table.ReadAt(buf, 0)
	buf = buf[:n-n%slotSize]
	var pending []string
	for off := 0; off < len(buf); off += slotSize {
		s := buf[off : off+slotSize]
		switch binary.NativeEndian.Uint32(s[0:]) {
		case slotRun:
			if pgid := int(int32(binary.NativeEndian.Uint32(s[4:]))); pgid > 1 {
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
			}
		case slotStart:
			if l := int(binary.NativeEndian.Uint32(s[8:])); l > 0 && l <= slotSize-12 {
				pending = append(pending, string(s[12:12+l]))
			}
		}
	}
	// One pass over /proc can miss a process being forked or exec'd as
	// it reads: again, until two passes in a row find nothing (or 1 s).
	for _, run := range pending {
		quiet := 0
		for deadline := time.Now().Add(time.Second); quiet < 2 && time.Now().Before(deadline); {
			if procfs.KillOrphans(run) == 0 {
				quiet++
			} else {
				quiet = 0
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// steps is this process's side: the shared table and its watcher.
var steps struct {
	mu      sync.Mutex
	failed  bool     // the table could not be made: no watcher
	file    *os.File // the table
	mem     []byte   // the table, mapped
	free    []int    // free slots
	next    int      // slots below next have been used
	pipe    *os.File // write end of the watcher's pipe; nil: no watcher
	watcher int      // its PID
}

// prestartWatcher starts the watcher ahead of the first step, so that its
// start-up overlaps mlpipe's own preparations rather than the steps.
func prestartWatcher() {
	if !watcherAvailable.Load() {
		return
	}
	s := &steps
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed || s.pipe != nil {
		return
	}
	if s.mem == nil {
		if err := openTable(); err != nil {
			s.failed = true
			return
		}
	}
	_ = startWatcher()
}

// watchSlot is one step's slot in the table (-1: none).
type watchSlot int

// watchStart takes a slot for a step about to start, and makes sure a
// watcher runs. Without a watcher the step runs as before (its leader
// still dies with mlpipe; KillOrphans at the next start does the rest).
func watchStart(runID string) watchSlot {
	if !watcherAvailable.Load() {
		return -1
	}
	s := &steps
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed {
		return -1
	}
	if s.mem == nil {
		if err := openTable(); err != nil {
			s.failed = true
			return -1
		}
	}
	if s.pipe != nil && watcherGone() {
		// Killed by someone: another one reads the same table.
		s.pipe.Close()
		s.pipe = nil
	}
	if s.pipe == nil {
		if err := startWatcher(); err != nil {
			return -1
		}
	}
	var i int
	switch {
	case len(s.free) > 0:
		i = s.free[len(s.free)-1]
		s.free = s.free[:len(s.free)-1]
	case s.next < slotCount:
		i = s.next
		s.next++
	default:
		return -1
	}
	slot := s.mem[i*slotSize : (i+1)*slotSize]
	run := runID
	if len(run) > slotSize-12 {
		run = "" // run ids are at most 64 bytes; no fallback for others
	}
	binary.NativeEndian.PutUint32(slot[8:], uint32(len(run)))
	copy(slot[12:], run)
	atomic.StoreUint32(word(slot, 0), slotStart)
	return watchSlot(i)
}

// started records the step's process group.
func (w watchSlot) started(pgid int) {
	if w < 0 {
		return
	}
	slot := steps.mem[int(w)*slotSize:]
	atomic.StoreUint32(word(slot, 4), uint32(pgid))
	atomic.StoreUint32(word(slot, 0), slotRun)
}

// done frees the slot: the step's group is gone, or it never started.
func (w watchSlot) done() {
	if w < 0 {
		return
	}
	s := &steps
	atomic.StoreUint32(word(s.mem[int(w)*slotSize:], 0), slotFree)
	s.mu.Lock()
	s.free = append(s.free, int(w))
	s.mu.Unlock()
}

func word(b []byte, off int) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }

// openTable makes the shared table: an unlinked file, mapped.
func openTable() error {
	dir := "/dev/shm"
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		dir = os.TempDir()
	}
	f, err := os.CreateTemp(dir, "mlpipe-steps-*")
	if err != nil {
		return err
	}
	_ = os.Remove(f.Name())
	if err := f.Truncate(slotSize * slotCount); err != nil {
		f.Close()
		return err
	}
	mem, err := syscall.Mmap(int(f.Fd()), 0, slotSize*slotCount, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		f.Close()
		return err
	}
	steps.file, steps.mem = f, mem
	return nil
}

// startWatcher starts a watcher of the table (steps.mu held). It does not
// wait for the watcher to be ready: it reads the table only once the pipe
// ends, and what mlpipe stored by then is there.
func startWatcher() error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Dir:        "/", // holds no directory of the user's
		Args:       []string{watcherArg0},
		Env:        []string{watcherEnv + "=1"},
		Stdin:      r,
		ExtraFiles: []*os.File{steps.file},
		// Its own group: Ctrl-C in the terminal is not for it.
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("start the step watcher: %w", err)
	}
	steps.pipe, steps.watcher = w, cmd.Process.Pid
	return nil
}

// watcherGone reports (steps.mu held) whether the watcher has died, and
// reaps it. No goroutine waits for the watcher: a thread blocked in a wait
// system call is woken by the exit of every child of the process, which
// costs a pair of context switches per step.
func watcherGone() bool {
	var ws syscall.WaitStatus
	pid, err := syscall.Wait4(steps.watcher, &ws, syscall.WNOHANG, nil)
	return pid == steps.watcher || errors.Is(err, syscall.ECHILD)
}
