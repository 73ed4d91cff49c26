//go:build linux && cgo

package gpu

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mlpipe/mlpipe/runner"
)

// TestMain lets the test binary act as a second mlpipe process: with
// GPU_TEST_HELPER set it leases GPUs, prints their UUIDs and holds them.
func TestMain(m *testing.M) {
	if os.Getenv("GPU_TEST_HELPER") != "" {
		os.Exit(helperProcess())
	}
	if os.Getenv("GPU_BENCH_HELPER") != "" {
		os.Exit(contentionHelper())
	}
	os.Exit(m.Run())
}

func helperProcess() int {
	dir := os.Getenv("GPU_TEST_LOCKDIR")
	inv, err := Open(Options{Mock: "dgxa100"})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	a, err := NewAllocator(inv, AllocatorOptions{LockDir: dir, Poll: 20 * time.Millisecond})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	var n int
	fmt.Sscan(os.Getenv("GPU_TEST_HELPER"), &n)
	l, err := a.Acquire(context.Background(), runner.GPURequest{RunID: "helper", Task: "hold", Count: n})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("leased", strings.Join(l.UUIDs(), ","))
	time.Sleep(time.Hour)
	return 0
}

func newMockAllocator(t *testing.T, kind, dir string) *Allocator {
	t.Helper()
	inv, err := Open(Options{Mock: kind, Busy: func(u string) bool { return Busy(dir, u) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inv.Close() })
	a, err := NewAllocator(inv, AllocatorOptions{LockDir: dir, Poll: 20 * time.Millisecond, SampleEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestMockInventory(t *testing.T) {
	for _, kind := range []string{"dgxa100", "dgxh100"} {
		inv, err := Open(Options{Mock: kind})
		if err != nil {
			t.Fatal(err)
		}
		desc, mock := inv.Info()
		if !mock || !strings.Contains(desc, "MOCK") {
			t.Errorf("%s: info %q mock=%v", kind, desc, mock)
		}
		devs, err := inv.Devices()
		if err != nil {
			t.Fatal(err)
		}
		if len(devs) != 8 {
			t.Fatalf("%s: %d devices", kind, len(devs))
		}
		for _, d := range devs {
			if d.MemoryFree <= 0 || d.MemoryUsed <= 0 || d.MemoryFree+d.MemoryUsed != d.MemoryTotal {
				t.Errorf("%s %s: memory %d/%d/%d", kind, d.UUID, d.MemoryUsed, d.MemoryFree, d.MemoryTotal)
			}
			if d.PCIBusID == "" || d.Util != 0 || d.PowerWatts <= 0 {
				t.Errorf("%s %s: bus %q util %v power %v", kind, d.UUID, d.PCIBusID, d.Util, d.PowerWatts)
			}
		}
		// Stable UUIDs: another process sees the same ones.
		inv2, _ := Open(Options{Mock: kind})
		devs2, _ := inv2.Devices()
		if devs2[3].UUID != devs[3].UUID {
			t.Errorf("mock UUIDs differ between opens: %s %s", devs[3].UUID, devs2[3].UUID)
		}
		if inv.Topology().Score(devs[0].UUID, devs[5].UUID) != ScoreNVLinkSwitch {
			t.Errorf("dgx pairs are NVLinked through NVSwitch")
		}
		inv.Close()
		inv2.Close()
	}
}

func TestUnknownMock(t *testing.T) {
	if _, err := Open(Options{Mock: "dgx9000"}); !errors.Is(err, ErrNVMLUnavailable) {
		t.Errorf("err = %v", err)
	}
}

func TestCheck(t *testing.T) {
	a := newMockAllocator(t, "dgxa100", t.TempDir())
	if err := a.Check(runner.GPURequest{Count: 8}); err != nil {
		t.Errorf("8 of 8: %v", err)
	}
	err := a.Check(runner.GPURequest{Count: 9, Task: "big"})
	if !errors.Is(err, ErrInsufficient) || !strings.Contains(err.Error(), "needs 9 GPU(s)") {
		t.Errorf("9 of 8: %v", err)
	}
	if err := a.Check(runner.GPURequest{Count: 1, Type: "H100"}); !errors.Is(err, ErrInsufficient) {
		t.Errorf("H100 on a DGX A100: %v", err)
	}
	if err := a.Check(runner.GPURequest{Count: 1, Type: "NVIDIA_TESLA_A100"}); err != nil {
		t.Errorf("A100 on a DGX A100: %v", err)
	}
}

// TestFourStepsOfTwoGPUs: on an 8-GPU machine four 2-GPU steps get
// disjoint GPUs at once, and a fifth waits until one finishes.
func TestFourStepsOfTwoGPUs(t *testing.T) {
	a := newMockAllocator(t, "dgxa100", t.TempDir())
	ctx := t.Context()
	seen := map[string]bool{}
	var leases []runner.GPULease
	for i := 0; i < 4; i++ {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		l, err := a.Acquire(c, runner.GPURequest{Count: 2, Task: fmt.Sprint("t", i)})
		cancel()
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		for _, u := range l.UUIDs() {
			if seen[u] {
				t.Fatalf("GPU %s leased twice", u)
			}
			seen[u] = true
		}
		leases = append(leases, l)
	}
	got := make(chan runner.GPULease)
	go func() {
		l, err := a.Acquire(ctx, runner.GPURequest{Count: 2, Task: "fifth"})
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- l
	}()
	select {
	case <-got:
		t.Fatal("the fifth step got GPUs while all eight were leased")
	case <-time.After(200 * time.Millisecond):
	}
	freed := leases[2].UUIDs()
	leases[2].Release()
	select {
	case l := <-got:
		if strings.Join(l.UUIDs(), ",") != strings.Join(freed, ",") {
			t.Errorf("fifth got %v, want the freed %v", l.UUIDs(), freed)
		}
		l.Release()
	case <-time.After(5 * time.Second):
		t.Fatal("the fifth step never got the freed GPUs")
	}
	for _, l := range leases {
		l.Release()
	}
}

func TestConcurrentLeasesNeverOverlap(t *testing.T) {
	a := newMockAllocator(t, "dgxh100", t.TempDir())
	var mu sync.Mutex
	inUse := map[string]bool{}
	var wg sync.WaitGroup
	for i := 0; i < 24; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			l, err := a.Acquire(t.Context(), runner.GPURequest{Count: 1 + i%3, Task: fmt.Sprint(i)})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			for _, u := range l.UUIDs() {
				if inUse[u] {
					t.Errorf("GPU %s leased twice", u)
				}
				inUse[u] = true
			}
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
			mu.Lock()
			for _, u := range l.UUIDs() {
				delete(inUse, u)
			}
			mu.Unlock()
			l.Release()
		}(i)
	}
	wg.Wait()
}

func TestBigRequestIsNotStarved(t *testing.T) {
	dir := t.TempDir()
	inv, err := Open(Options{Mock: "dgxa100"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAllocator(inv, AllocatorOptions{LockDir: dir, Poll: 10 * time.Millisecond, StarveAfter: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// A stream of single-GPU steps keeps some GPU busy at all times.
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				l, err := a.Acquire(ctx, runner.GPURequest{Count: 1})
				if err != nil {
					return
				}
				time.Sleep(15 * time.Millisecond)
				l.Release()
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	c, cancelBig := context.WithTimeout(ctx, 10*time.Second)
	defer cancelBig()
	l, err := a.Acquire(c, runner.GPURequest{Count: 8, Task: "big"})
	if err != nil {
		t.Fatalf("the 8-GPU step starved: %v", err)
	}
	l.Release()
	cancel()
	wg.Wait()
}

func startHelper(t *testing.T, dir string, n int) (*exec.Cmd, []string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GPU_TEST_HELPER="+fmt.Sprint(n), "GPU_TEST_LOCKDIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "leased ") {
		t.Fatalf("helper: %q %v", line, err)
	}
	return cmd, strings.Split(strings.TrimSpace(strings.TrimPrefix(line, "leased ")), ",")
}

// TestTwoProcessesNeverShare: another process holds 5 GPUs; this one can
// lease the 3 others and no more, and never one of the 5.
func TestTwoProcessesNeverShare(t *testing.T) {
	dir := t.TempDir()
	_, theirs := startHelper(t, dir, 5)
	a := newMockAllocator(t, "dgxa100", dir)
	l, err := a.Acquire(t.Context(), runner.GPURequest{RunID: "me", Task: "t", Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range l.UUIDs() {
		for _, o := range theirs {
			if u == o {
				t.Fatalf("GPU %s leased by both processes", u)
			}
		}
	}
	c, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if extra, err := a.Acquire(c, runner.GPURequest{Count: 1}); err == nil {
		t.Errorf("got a 9th GPU %v", extra.UUIDs())
	}
	// mlpipe gpus sees who holds what.
	devs, _ := a.Inventory().Devices()
	holders := a.Holders(devs)
	if len(holders) != 8 {
		t.Errorf("%d holders, want 8", len(holders))
	}
	for _, h := range holders {
		if h.Info.RunID == "" {
			t.Errorf("holder of %s unknown: %+v", h.UUID, h)
		}
	}
	l.Release()
}

// TestKilledHolderReleasesGPUs: SIGKILL the process that holds all eight
// GPUs; the kernel drops its locks and this process can lease them.
func TestKilledHolderReleasesGPUs(t *testing.T) {
	dir := t.TempDir()
	cmd, _ := startHelper(t, dir, 8)
	a := newMockAllocator(t, "dgxa100", dir)
	c, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := a.Acquire(c, runner.GPURequest{Count: 1}); err == nil {
		t.Fatal("leased a GPU the helper holds")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	c2, cancel2 := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel2()
	l, err := a.Acquire(c2, runner.GPURequest{Count: 8})
	if err != nil {
		t.Fatalf("GPUs of a killed holder stayed leased: %v", err)
	}
	l.Release()
}

// TestStaleLeaseWithLiveContainer: a holder record naming a running container
// keeps the GPU busy even though its lock is free (the container outlived
// a crashed mlpipe).
func TestStaleLeaseWithLiveContainer(t *testing.T) {
	dir := t.TempDir()
	alive := true
	inv, _ := Open(Options{Mock: "dgxa100"})
	a, _ := NewAllocator(inv, AllocatorOptions{LockDir: dir, Poll: 10 * time.Millisecond, ContainerAlive: func(string) bool { return alive }})
	devs, _ := inv.Devices()
	host, _ := os.Hostname()
	for _, d := range devs {
		if err := os.WriteFile(a.lockPath(d.UUID), []byte(fmt.Sprintf(`{"uuid":%q,"run_id":"old","host":%q,"container":"c0ffee"}`, d.UUID, host)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := a.Acquire(c, runner.GPURequest{Count: 1}); err == nil {
		t.Fatal("leased a GPU a live container holds")
	}
	alive = false
	l, err := a.Acquire(t.Context(), runner.GPURequest{Count: 8})
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
}

func TestSamplingWhileLeased(t *testing.T) {
	dir := t.TempDir()
	a := newMockAllocator(t, "dgxh100", dir)
	l, err := a.Acquire(t.Context(), runner.GPURequest{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	stop := a.Sample(t.Context(), l.UUIDs())
	time.Sleep(300 * time.Millisecond)
	samples := stop()
	l.Release()
	if len(samples) < 8 {
		t.Fatalf("%d samples in 300 ms at 50 ms for 2 GPUs", len(samples))
	}
	sums := Summarize(samples)
	if len(sums) != 2 {
		t.Fatalf("summaries: %+v", sums)
	}
	for _, s := range sums {
		if s.UtilMean < 70 || s.UtilMax > 100 || s.MemPeak <= 0 || s.PowerMean <= 100 {
			t.Errorf("busy mock GPU %s: %+v", s.UUID, s)
		}
	}
}
