// Package procfs reads the few fields of Linux's /proc/PID/stat that mlpipe
// needs: a process's parent, its start time (which tells a process from a
// later one that reused its PID) and its CPU time.
package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Stat holds fields of /proc/PID/stat.
type Stat struct {
	PPID      int
	StartTime string // field 22, clock ticks since boot, kept as text: only compared
	UTime     int64  // field 14, clock ticks
	STime     int64  // field 15, clock ticks
}

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(b)
}

// ParseStat parses the content of a /proc/PID/stat file. The command name
// (field 2) may hold spaces and parentheses, so fields are counted from the
// last ')'.
func ParseStat(b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, errors.New("procfs: stat has no command name")
	}
	// After the name: state (field 3), ppid (4), ... utime (14), stime
	// (15), ... starttime (22).
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return Stat{}, fmt.Errorf("procfs: stat has %d fields after the name, want at least 20", len(f))
	}
	var st Stat
	var err error
	if st.PPID, err = strconv.Atoi(f[1]); err != nil {
		return Stat{}, fmt.Errorf("procfs: ppid: %w", err)
	}
	if st.UTime, err = strconv.ParseInt(f[11], 10, 64); err != nil {
		return Stat{}, fmt.Errorf("procfs: utime: %w", err)
	}
	if st.STime, err = strconv.ParseInt(f[12], 10, 64); err != nil {
		return Stat{}, fmt.Errorf("procfs: stime: %w", err)
	}
	st.StartTime = f[19]
	return st, nil
}

// StartTime returns a process's start time (field 22), or "" where it
// cannot be read (the process is gone, or this is not Linux).
func StartTime(pid int) string {
	st, err := ReadStat(pid)
	if err != nil {
		return ""
	}
	return st.StartTime
}

// State is the state letter of process (or thread, with a task path) pid
// in /proc/PID/stat: R, S, D, T, t, Z, X, ...; ok is false when there is
// no such process.
func State(pid int) (state byte, ok bool) {
	return stateAt("/proc/" + strconv.Itoa(pid) + "/stat")
}

func stateAt(path string) (byte, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, false
	}
	return b[i+2], true
}

// Zombie reports whether pid has exited and is waiting to be reaped (a
// zombie still answers kill(pid, 0)).
func Zombie(pid int) bool {
	st, ok := State(pid)
	return ok && st == 'Z'
}

// Alive reports whether pid runs: it exists and has not exited (a zombie
// has, even before it is reaped).
func Alive(pid int) bool {
	st, ok := State(pid)
	return ok && st != 'Z' && st != 'X'
}

// Stopped reports whether every thread of pid is stopped (SIGSTOP or a
// tracer: state T or t).
func Stopped(pid int) bool {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, tk := range tasks {
		st, ok := stateAt("/proc/" + strconv.Itoa(pid) + "/task/" + tk.Name() + "/stat")
		if !ok || (st != 'T' && st != 't') {
			return false
		}
	}
	return true
}

// Owner is the uid that owns process pid, or -1 when there is none.
func Owner(pid int) int {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/"+strconv.Itoa(pid), &st); err != nil {
		return -1
	}
	return int(st.Uid)
}

// WaitGone waits up to timeout for every process of pids to be gone and
// returns those still alive (for tests of what dies with mlpipe).
func WaitGone(pids []int, timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		var alive []int
		for _, pid := range pids {
			if Alive(pid) {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 || time.Now().After(deadline) {
			return alive
		}
		time.Sleep(20 * time.Millisecond)
	}
}
