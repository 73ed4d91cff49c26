//go:build gpu && linux && cgo

package gpu

import (
	"testing"
	"time"

	"github.com/mlpipe/mlpipe/runner"
)

// Tests against the real driver: go test -tags gpu ./gpu/ on a machine
// with an NVIDIA GPU (scripts/gpu-check.sh runs them there).

func TestRealNVMLInventory(t *testing.T) {
	inv, err := Open(Options{})
	if err != nil {
		t.Fatalf("NVML: %v", err)
	}
	defer inv.Close()
	desc, mock := inv.Info()
	if mock {
		t.Fatal("real inventory says mock")
	}
	devs, err := inv.Devices()
	if err != nil || len(devs) == 0 {
		t.Fatalf("devices: %v %v", devs, err)
	}
	for _, d := range devs {
		t.Logf("%s: %d %s %s bus %s mem %d/%d MiB util %.0f%% power %.0f W procs %d mig %v", desc, d.Index, d.UUID, d.Name, d.PCIBusID, d.MemoryUsed>>20, d.MemoryTotal>>20, d.Util, d.PowerWatts, len(d.Processes), d.MIGEnabled)
		if d.UUID == "" || d.Name == "" || d.MemoryTotal <= 0 {
			t.Errorf("incomplete device %+v", d)
		}
	}
}

func TestRealAllocateAndSample(t *testing.T) {
	inv, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer inv.Close()
	a, err := NewAllocator(inv, AllocatorOptions{LockDir: t.TempDir(), SampleEvery: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l, err := a.Acquire(t.Context(), runner.GPURequest{Count: 1, RunID: "real", Task: "probe"})
	if err != nil {
		t.Fatal(err)
	}
	stop := a.Sample(t.Context(), l.UUIDs())
	time.Sleep(500 * time.Millisecond)
	samples := stop()
	l.Release()
	if len(samples) < 3 {
		t.Fatalf("%d samples", len(samples))
	}
	for _, s := range Summarize(samples) {
		t.Logf("summary %+v", s)
		if s.MemPeak <= 0 {
			t.Errorf("no memory reading: %+v", s)
		}
	}
}
