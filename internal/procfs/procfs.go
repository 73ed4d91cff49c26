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

// Zombie reports whether pid has exited and is waiting to be reaped (a
// zombie still answers kill(pid, 0)).
func Zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && b[i+2] == 'Z'
}
