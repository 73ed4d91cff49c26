package procfs

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// KillOrphans kills the step processes a dead mlpipe left behind: every
// process whose environment carries MLPIPE_RUN_ID=<runID>. A step's
// direct child dies with mlpipe (PR_SET_PDEATHSIG) and the process
// executor's watcher kills the rest of its process group at once; this is
// the second line, for what left its group (or a mlpipe built without the
// watcher), run at the next start. It returns how many processes it
// signalled.
func KillOrphans(runID string) int {
	if runID == "" {
		return 0
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	needle := []byte("MLPIPE_RUN_ID=" + runID + "\x00")
	self := os.Getpid()
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !bytes.Contains(append([]byte{0}, env...), append([]byte{0}, needle...)) {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}
