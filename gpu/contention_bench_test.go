//go:build linux && cgo

package gpu

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mlpipe/mlpipe/runner"
)

// The lease benchmark (scripts/bench/gpulease.sh, MLPIPE_BENCH=1): several
// processes, of two users when the test runs as root and they exist,
// contend on go-nvml's 8-GPU mock through one shared lease directory.

// contentionHelper is one benchmark process: LOOPS times, acquire COUNT
// GPUs, hold them HOLD, release; print the acquire+release durations (µs).
func contentionHelper() int {
	inv, err := Open(Options{Mock: "dgxa100"})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	a, err := NewAllocator(inv, AllocatorOptions{LockDir: os.Getenv("GPU_TEST_LOCKDIR"), Poll: 5 * time.Millisecond, StarveAfter: time.Second})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	loops, _ := strconv.Atoi(os.Getenv("GPU_BENCH_LOOPS"))
	count, _ := strconv.Atoi(os.Getenv("GPU_BENCH_COUNT"))
	hold, _ := time.ParseDuration(os.Getenv("GPU_BENCH_HOLD"))
	var us []int64
	for i := 0; i < loops; i++ {
		t0 := time.Now()
		l, err := a.Acquire(context.Background(), runner.GPURequest{RunID: "bench", Task: "t", Count: count})
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		waited := time.Since(t0)
		time.Sleep(hold)
		t1 := time.Now()
		l.Release()
		us = append(us, (waited + time.Since(t1)).Microseconds())
	}
	b, _ := json.Marshal(us)
	fmt.Println(string(b))
	return 0
}

func percentile(v []int64, p float64) time.Duration {
	s := slices.Clone(v)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return time.Duration(s[i]) * time.Microsecond
}

type benchProc struct {
	cmd *exec.Cmd
	out *bufio.Reader
}

// startBench starts one helper process, as uid:gid when given.
func startBench(t *testing.T, bin, dir string, cred *syscall.Credential, loops, count int, hold time.Duration) benchProc {
	t.Helper()
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), "GPU_BENCH_HELPER=1", "GPU_TEST_LOCKDIR="+dir, fmt.Sprintf("GPU_BENCH_LOOPS=%d", loops),
		fmt.Sprintf("GPU_BENCH_COUNT=%d", count), "GPU_BENCH_HOLD="+hold.String())
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return benchProc{cmd, bufio.NewReader(out)}
}

func (p benchProc) results(t *testing.T) []int64 {
	t.Helper()
	line, _ := p.out.ReadString('\n')
	_ = p.cmd.Wait()
	var us []int64
	if err := json.Unmarshal([]byte(line), &us); err != nil {
		t.Fatalf("helper: %q", line)
	}
	return us
}

// benchSetup is a shared lease directory and a test binary every user can
// run (as root); or a private one for this user.
func benchSetup(t *testing.T) (bin, dir string, creds []*syscall.Credential) {
	base := t.TempDir()
	dir = filepath.Join(base, "gpus")
	bin = os.Args[0]
	if os.Geteuid() != 0 {
		return bin, dir, []*syscall.Credential{nil}
	}
	for p := base; p != os.TempDir() && p != "/"; p = filepath.Dir(p) {
		_ = os.Chmod(p, 0o755)
	}
	inv, err := Open(Options{Mock: "dgxa100"})
	if err != nil {
		t.Fatal(err)
	}
	devs, _ := inv.Devices()
	inv.Close()
	if _, err := Setup(dir, devs); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(base, "gpu.test")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"mlpipe-alice", "mlpipe-bob"} {
		u, err := user.Lookup(n)
		if err != nil {
			return bin, dir, []*syscall.Credential{nil}
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		creds = append(creds, &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)})
	}
	return bin, dir, creds
}

// TestBenchLeaseContention: 2 users × 4 processes acquire and release one
// GPU each, 200 times, on 8 mock GPUs; then the longest wait of a 2-GPU
// request while 6 processes stream 1-GPU requests.
func TestBenchLeaseContention(t *testing.T) {
	if os.Getenv("MLPIPE_BENCH") != "1" {
		t.Skip("a benchmark: scripts/bench/gpulease.sh runs it (MLPIPE_BENCH=1)")
	}
	bin, dir, creds := benchSetup(t)
	var procs []benchProc
	for i := 0; i < 8; i++ {
		procs = append(procs, startBench(t, bin, dir, creds[i%len(creds)], 200, 1, 0))
	}
	var all []int64
	for _, p := range procs {
		all = append(all, p.results(t)...)
	}
	users := len(creds)
	if creds[0] == nil {
		users = 1
	}
	fmt.Printf("acquire+release of 1 GPU, %d user(s) x %d processes, 8 mock GPUs, %d samples: median %s, p99 %s, max %s\n",
		users, 8/max(users, 1), len(all), percentile(all, 0.5), percentile(all, 0.99), percentile(all, 1))

	// Starvation: 6 processes stream 1-GPU steps of 20 ms; a 2-GPU request
	// in another process waits at most StarveAfter (1 s here) plus a step.
	var stream []benchProc
	for i := 0; i < 6; i++ {
		stream = append(stream, startBench(t, bin, dir, creds[i%len(creds)], 300, 1, 20*time.Millisecond))
	}
	time.Sleep(200 * time.Millisecond)
	var waits []int64
	var mu sync.Mutex
	big := startBench(t, bin, dir, creds[len(creds)-1], 5, 8, 50*time.Millisecond)
	for _, w := range big.results(t) {
		mu.Lock()
		waits = append(waits, w)
		mu.Unlock()
	}
	for _, p := range stream {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
	fmt.Printf("8-GPU request against 6 processes streaming 1-GPU steps of 20 ms (StarveAfter 1s), %d requests: median wait %s, longest %s\n",
		len(waits), percentile(waits, 0.5), percentile(waits, 1))
}
