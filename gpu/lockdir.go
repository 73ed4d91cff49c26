package gpu

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Opening the lock directory and the files in it without ever following a
// link or touching a file someone planted there.

// openLockDir creates the lock directory if it is missing (world-writable
// with the sticky bit when root creates it, so that several users of one
// workstation can share it; 0755 when a user creates it) and opens it, refusing a symbolic link and a directory
// that another unprivileged user owns or that others may rearrange: whoever
// can remove or rename the lock files there can break GPU exclusivity. A
// directory is only ever chmod-ed by its owner: when this call created it,
// or to add the sticky bit to one of the user's own that others can write.
func openLockDir(path string) (*os.File, error) {
	created := false
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
			return nil, fmt.Errorf("create GPU lock directory: %w", err)
		}
		// Created private, then given its final mode (checkLockDir), so
		// that no other user can plant a file in it meanwhile.
		switch err := os.Mkdir(path, 0o700); {
		case err == nil:
			created = true
		case !errors.Is(err, fs.ErrExist):
			return nil, fmt.Errorf("create GPU lock directory: %w", err)
		}
		fi, err = os.Lstat(path)
	}
	if err != nil {
		return nil, fmt.Errorf("GPU lock directory: %w", err)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return nil, fmt.Errorf("GPU lock directory %s is a symbolic link: set gpu.lock_dir (MLPIPE_GPU_LOCK_DIR) to a real directory owned by root or by you", path)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("GPU lock directory %s is not a directory", path)
	}
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("GPU lock directory: %w", &os.PathError{Op: "open", Path: path, Err: err})
	}
	dir := os.NewFile(uintptr(fd), path)
	// Check what was opened, not what the name pointed at a moment ago.
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		dir.Close()
		return nil, fmt.Errorf("GPU lock directory: %w", &os.PathError{Op: "stat", Path: path, Err: err})
	}
	chmod, err := checkLockDir(path, st.Uid, uint32(st.Mode), os.Geteuid(), created)
	if err == nil && chmod != 0 {
		err = dir.Chmod(chmod) // fchmod: the directory checked, which is the user's
	}
	if err != nil {
		dir.Close()
		return nil, err
	}
	return dir, nil
}

// checkLockDir says whether a lock directory owned by uid, with mode (from
// stat), may be used by a process whose effective uid is euid, and the
// mode to give it first (0: none; only ever the user's own directory).
func checkLockDir(path string, uid, mode uint32, euid int, created bool) (os.FileMode, error) {
	othersWrite := mode&0o022 != 0 && mode&syscall.S_ISVTX == 0
	switch {
	case int64(uid) == int64(euid):
		if created {
			// Root's or a user's own: others may read the holders, not add
			// or rename files (a shared directory is made by Setup, with
			// its files).
			return 0o755, nil
		}
		if othersWrite {
			return os.FileMode(mode&0o777) | os.ModeSticky, nil
		}
		return 0, nil
	case uid == 0:
		if othersWrite {
			return 0, fmt.Errorf("GPU lock directory %s is owned by root but writable by other users without the sticky bit: they could empty or rearrange it and break GPU exclusivity; have the workstation's owner run `sudo mlpipe gpus setup` (a root-owned 0755 directory with one lock file per GPU) or set gpu.lock_dir (MLPIPE_GPU_LOCK_DIR) to a directory you own", path)
		}
		return 0, nil
	default:
		return 0, fmt.Errorf("GPU lock directory %s is owned by %s, not by root or you: another user could empty or rearrange it and break GPU exclusivity; have the workstation's owner run `sudo mlpipe gpus setup` or set gpu.lock_dir (MLPIPE_GPU_LOCK_DIR) to a directory you own", path, describeUID(uid))
	}
}

// describeUID is "uid N (name)", or "uid N" when the name is unknown.
func describeUID(uid uint32) string {
	s := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(s); err == nil && u.Username != "" {
		return "uid " + s + " (" + u.Username + ")"
	}
	return "uid " + s
}

// openInDir opens a file in the lock directory dir (or, when dir is nil,
// in the directory at dirPath) without following a symbolic link, and
// refuses anything but a regular file with a single link: a link planted
// there must never make mlpipe touch, create or truncate another file.
// With create, a missing file is created exclusively (never through a
// dangling link).
func openInDir(dir *os.File, dirPath, name string, flags int, create bool) (*os.File, error) {
	path := filepath.Join(dirPath, name)
	if strings.ContainsRune(name, '/') {
		return nil, fmt.Errorf("refusing %s: not a plain file name", path)
	}
	// O_NONBLOCK: opening a planted FIFO must not hang; it is cleared
	// once the file is known to be a regular one.
	flags |= syscall.O_NOFOLLOW | syscall.O_CLOEXEC | syscall.O_NONBLOCK
	open := func(flags int, mode uint32) (int, error) {
		for {
			var fd int
			var err error
			if dir == nil {
				fd, err = syscall.Open(path, flags, mode)
			} else {
				fd, err = openat(dir, name, flags, mode)
			}
			if !errors.Is(err, syscall.EINTR) {
				return fd, err
			}
		}
	}
	fd, err := open(flags, 0)
	// Open an existing file without O_CREAT (fs.protected_regular refuses
	// that for another user's file in a sticky directory), else create it
	// exclusively; a file that appears or goes in between is retried.
	for try := 0; create && errors.Is(err, syscall.ENOENT) && try < 8; try++ {
		fd, err = open(flags|syscall.O_CREAT|syscall.O_EXCL, 0o666)
		if !errors.Is(err, syscall.EEXIST) {
			break
		}
		fd, err = open(flags, 0)
	}
	if err != nil {
		if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EEXIST) {
			var st syscall.Stat_t
			if syscall.Lstat(path, &st) == nil && uint32(st.Mode)&syscall.S_IFMT == syscall.S_IFLNK {
				return nil, fmt.Errorf("refusing %s: it is a symbolic link, which mlpipe never follows in the GPU lock directory (someone may have planted it there)", path)
			}
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if uint32(st.Mode)&syscall.S_IFMT != syscall.S_IFREG {
		syscall.Close(fd)
		return nil, fmt.Errorf("refusing %s: not a regular file (someone may have planted it there)", path)
	}
	if uint64(st.Nlink) != 1 {
		syscall.Close(fd)
		return nil, fmt.Errorf("refusing %s: it has %d hard links, so it may be another file (someone may have planted it there)", path, uint64(st.Nlink))
	}
	if err := syscall.SetNonblock(fd, false); err != nil {
		syscall.Close(fd)
		return nil, &os.PathError{Op: "fcntl", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// flock takes an exclusive lock on f (blocking, or failing with
// errLocked).
func flock(f *os.File, block bool) error {
	how := syscall.LOCK_EX
	if !block {
		how |= syscall.LOCK_NB
	}
	var err error
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errLocked
	}
	return err
}
