package gpu

// The machine policy (excluded GPUs, the per-user limit) and what sharing a
// lease directory between users takes.

import (
	"os"
	"strconv"
	"syscall"

	"github.com/mlpipe/mlpipe/internal/procfs"
)

// shareFile makes a lock file this process owns usable by the other users
// of a shared directory (0666, whatever the umask was when it was made).
func (a *Allocator) shareFile(f *os.File) {
	if !a.multiUser {
		return
	}
	var st syscall.Stat_t
	if syscall.Fstat(int(f.Fd()), &st) == nil && int(st.Uid) == os.Geteuid() && st.Mode&0o666 != 0o666 {
		_ = f.Chmod(0o666)
	}
}

// excluded reports whether the machine policy keeps d from being leased.
func (a *Allocator) excluded(d Device) bool {
	for _, x := range a.opts.Exclude {
		if x == d.UUID || x == d.Parent || (d.Parent == "" && x == strconv.Itoa(d.Index)) {
			return true
		}
	}
	return false
}

// Excluded reports whether the machine policy keeps d from being leased.
func (a *Allocator) Excluded(d Device) bool { return a.excluded(d) }

// LockDir is the lease directory in use.
func (a *Allocator) LockDir() string { return a.opts.LockDir }

// usable are the devices the policy lets mlpipe lease.
func (a *Allocator) usable(devs []Device) []Device {
	out := make([]Device, 0, len(devs))
	for _, d := range devs {
		if !a.excluded(d) {
			out = append(out, d)
		}
	}
	return out
}

// peek reads the holder record of a GPU locked by someone else.
func (a *Allocator) peek(uuid string) (LeaseInfo, bool) {
	f, err := openInDir(a.dir, a.opts.LockDir, lockName(uuid), syscall.O_RDONLY, false)
	if err != nil {
		return LeaseInfo{}, false
	}
	defer f.Close()
	return readInfo(f)
}

// heldByUser counts the GPUs this user's mlpipe processes hold now, this
// one's included (alloc.lock held, a.mu held).
func (a *Allocator) heldByUser(devs []Device) int {
	n := 0
	for _, d := range devs {
		if a.held[d.UUID] != nil {
			n++
		}
	}
	return n + a.heldPerUserExcept(devs)[a.uid]
}

// heldPerUser counts the GPUs each uid's mlpipe processes hold (for the
// queue's reservations); alloc.lock held.
func (a *Allocator) heldPerUser() map[int]int {
	devs, err := a.inv.Devices()
	if err != nil {
		return map[int]int{}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.heldPerUserExcept(devs)
	out[a.uid] += len(a.held)
	return out
}

// heldPerUserExcept counts, per uid, the GPUs locked by other processes.
// A holder record can be written by any user of a shared directory, so it
// counts only when the process it names is alive, started when it says and
// owned by the uid it names; a lock without a believable record counts for
// nobody.
func (a *Allocator) heldPerUserExcept(devs []Device) map[int]int {
	out := map[int]int{}
	for _, d := range devs {
		if a.held[d.UUID] != nil {
			continue
		}
		f, err := openInDir(a.dir, a.opts.LockDir, lockName(d.UUID), syscall.O_RDONLY, false)
		if err != nil {
			continue
		}
		if flock(f, false) == nil {
			f.Close() // free
			continue
		}
		info, ok := readInfo(f)
		f.Close()
		if ok && info.Host == a.host && info.PID > 0 && info.PIDStart != "" &&
			procfs.StartTime(info.PID) == info.PIDStart && procfs.Owner(info.PID) == info.UID {
			out[info.UID]++
		}
	}
	return out
}
