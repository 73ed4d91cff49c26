package gpu

// A GPU workstation shared by a team: one lease directory for every user.
//
// The shared lease directory (SharedLockDir) is made once by the
// workstation's owner: owned by root, mode 0755, so that no ordinary user
// can add, remove or rename anything in it, and holding one file per lock,
// each root-owned with mode 0666 so that every user can open it to lock it
// and to write the holder record (`sudo mlpipe gpus setup`, or any mlpipe
// that runs as root with GPUs does it on the way). Without it, each user's
// mlpipe leases in a directory of its own, and leases are not shared with
// other users (mlpipe says so).

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// SharedLockDir is where the owner's setup puts the machine-wide leases.
const SharedLockDir = "/var/lib/mlpipe/gpus"

// Names of the files in a lock directory besides the GPUs' own.
const (
	allocLockName = "alloc.lock" // held while choosing and locking GPUs
	queueName     = "queue"      // the requests waiting, across processes (queue.go)
)

// LockDirChoice is the lease directory mlpipe uses when none is configured.
type LockDirChoice struct {
	Dir string
	// Shared is true for the owner's machine-wide directory; false for a
	// directory of this user's own, whose leases other users do not see.
	Shared bool
	// SetUp is true when this (root) process has to make it first.
	SetUp bool
}

// DefaultLockDir chooses the lease directory: the shared one when the
// owner has set it up, or when this process runs as root (it then sets it
// up); otherwise one of this user's own.
func DefaultLockDir() LockDirChoice {
	if fi, err := os.Lstat(SharedLockDir); err == nil && fi.IsDir() {
		return LockDirChoice{Dir: SharedLockDir, Shared: true, SetUp: os.Geteuid() == 0}
	}
	if os.Geteuid() == 0 {
		return LockDirChoice{Dir: SharedLockDir, Shared: true, SetUp: true}
	}
	return LockDirChoice{Dir: filepath.Join(os.TempDir(), "mlpipe-gpus-"+strconv.Itoa(os.Getuid()))}
}

// Setup makes dir the shared lease directory for devs (root only): the
// directory root-owned 0755 (created, or corrected when root owns it), and
// every lock file present, root-owned 0666, whatever the umask. It is
// idempotent, and adds the files of GPUs that appeared since. It returns
// the files it created.
func Setup(dir string, devs []Device) ([]string, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("setting up the shared GPU lease directory needs root (sudo mlpipe gpus setup)")
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("GPU lease directory: %w", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("GPU lease directory: %w", err)
	}
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("GPU lease directory: %w", &os.PathError{Op: "open", Path: dir, Err: err})
	}
	d := os.NewFile(uintptr(fd), dir)
	defer d.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Uid != 0 {
		return nil, fmt.Errorf("GPU lease directory %s is owned by %s, not root: remove it and run setup again", dir, describeUID(st.Uid))
	}
	if uint32(st.Mode)&0o7777 != 0o755 {
		if err := d.Chmod(0o755); err != nil {
			return nil, err
		}
	}
	names := []string{allocLockName, queueName}
	for _, dev := range devs {
		names = append(names, lockName(dev.UUID))
	}
	var created []string
	for _, n := range names {
		f, made, err := openShared(d, dir, n)
		if err != nil {
			return created, err
		}
		f.Close()
		if made {
			created = append(created, n)
		}
	}
	return created, nil
}

// openShared opens (or creates exclusively) a file of the shared directory
// and makes it root-owned 0666: a file left by an earlier version with
// another owner or mode is corrected, one that is not a plain file refused.
func openShared(d *os.File, dir, name string) (*os.File, bool, error) {
	f, err := openInDir(d, dir, name, syscall.O_RDONLY, false)
	made := false
	if errors.Is(err, fs.ErrNotExist) {
		f, err = openInDir(d, dir, name, syscall.O_RDONLY, true)
		made = err == nil
	}
	if err != nil {
		return nil, false, err
	}
	if err := f.Chown(0, 0); err != nil {
		f.Close()
		return nil, false, err
	}
	if err := f.Chmod(0o666); err != nil {
		f.Close()
		return nil, false, err
	}
	return f, made, nil
}
