package gpu

import (
	"fmt"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMatches(t *testing.T) {
	a100 := Device{Name: "NVIDIA A100-SXM4-40GB"}
	a10 := Device{Name: "NVIDIA A10"}
	h100 := Device{Name: "NVIDIA H100 80GB HBM3"}
	mock := Device{Name: "Mock NVIDIA A100-SXM4-40GB"}
	mig := Device{Name: "NVIDIA A100-SXM4-40GB MIG 1g.5gb", MIGProfile: "1g.5gb", Parent: "GPU-x"}
	tests := []struct {
		d    Device
		typ  string
		want bool
	}{
		{a100, "", true},
		{a100, "nvidia.com/gpu", true},
		{a100, "NVIDIA_TESLA_A100", true},
		{a100, "nvidia-tesla-a100", true},
		{a100, "A100", true},
		{a100, "a100-40gb", true},
		{a100, "NVIDIA_A100_80GB", false},
		{a10, "A100", false},
		{a100, "A10", false},
		{h100, "H100", true},
		{h100, "NVIDIA_H100_80GB", true},
		{h100, "A100", false},
		{mock, "NVIDIA_TESLA_A100", true},
		{mig, "1g.5gb", true},
		{mig, "A100", true},
		{a100, "T4", false},
	}
	for _, tc := range tests {
		if got := Matches(tc.d, tc.typ); got != tc.want {
			t.Errorf("Matches(%q, %q) = %v, want %v", tc.d.Name, tc.typ, got, tc.want)
		}
	}
}

func devs(n int, mem int64) []Device {
	out := make([]Device, n)
	for i := range out {
		out[i] = Device{Index: i, UUID: fmt.Sprintf("GPU-%d", i), Name: "NVIDIA A100-SXM4-40GB", MemoryTotal: mem, MemoryFree: mem, Processes: []Process{}}
	}
	return out
}

func uuids(ds []Device) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.UUID)
	}
	sort.Strings(out)
	return out
}

// pcieTopology: GPUs 0-3 under one PCIe switch, 4-7 under another, on two
// sockets; NVLink bridges between 0-1, 2-3, 4-5 and 6-7.
func pcieTopology() Topology {
	t := Topology{}
	for i := 0; i < 8; i++ {
		for j := i + 1; j < 8; j++ {
			a, b := fmt.Sprintf("GPU-%d", i), fmt.Sprintf("GPU-%d", j)
			switch {
			case j == i+1 && i%2 == 0:
				t.Set(a, b, 2*ScorePerNVLink)
			case i/4 == j/4:
				t.Set(a, b, ScoreSingleSwitch)
			default:
				t.Set(a, b, ScoreCrossSocket)
			}
		}
	}
	return t
}

func TestChoose(t *testing.T) {
	topo := pcieTopology()
	all := devs(8, 40<<30)
	tests := []struct {
		name string
		free []Device
		n    int
		want []string
	}{
		{"pair on an NVLink bridge", all, 2, []string{"GPU-0", "GPU-1"}},
		{"pair when 0 is taken", all[1:], 2, []string{"GPU-2", "GPU-3"}},
		{"four in one switch", all, 4, []string{"GPU-0", "GPU-1", "GPU-2", "GPU-3"}},
		{"four with a gap", append(append([]Device(nil), all[1:3]...), all[4:]...), 4, []string{"GPU-4", "GPU-5", "GPU-6", "GPU-7"}},
		{"all eight", all, 8, uuids(all)},
		{"too few", all[:2], 3, nil},
		{"single: least connected first", []Device{all[0], all[1], all[3]}, 1, []string{"GPU-3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Choose(tc.free, tc.n, topo)
			if tc.want == nil {
				if got != nil {
					t.Fatalf("got %v, want nil", uuids(got))
				}
				return
			}
			if diff := cmp.Diff(tc.want, uuids(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestChooseBestFitKeepsBigGPUsFree(t *testing.T) {
	small := Device{Index: 1, UUID: "GPU-small", MemoryTotal: 24 << 30}
	big := Device{Index: 0, UUID: "GPU-big", MemoryTotal: 80 << 30}
	if got := Choose([]Device{big, small}, 1, Topology{}); got[0].UUID != "GPU-small" {
		t.Errorf("chose %s, want the smaller GPU", got[0].UUID)
	}
}

func TestChooseLargeSetsUseGreedy(t *testing.T) {
	// C(24,12) is too many combinations to enumerate: the greedy path runs.
	d := devs(24, 1<<30)
	topo := Topology{}
	for i := 0; i < 24; i++ {
		for j := i + 1; j < 24; j++ {
			s := ScoreCrossSocket
			if i/12 == j/12 {
				s = ScoreNVLinkSwitch
			}
			topo.Set(d[i].UUID, d[j].UUID, s)
		}
	}
	got := Choose(d, 12, topo)
	if len(got) != 12 {
		t.Fatalf("got %d GPUs", len(got))
	}
	half := got[0].Index / 12
	for _, g := range got {
		if g.Index/12 != half {
			t.Fatalf("greedy choice spans both halves: %v", uuids(got))
		}
	}
}

func TestEligible(t *testing.T) {
	d := devs(4, 40<<30)
	d[1].Processes = []Process{{PID: 999999, UsedMemory: 21 << 30}}
	d[2].Processes = []Process{{PID: 42}}
	d[3].MemoryFree = 1 << 30
	ok, skipped := Eligible(d, Request{Count: 1, MinFreeMemory: 2 << 30}, map[int]bool{42: true})
	if diff := cmp.Diff([]string{"GPU-0", "GPU-2"}, uuids(ok)); diff != "" {
		t.Errorf("eligible (-want +got):\n%s", diff)
	}
	if len(skipped) != 2 {
		t.Errorf("skipped = %q", skipped)
	}
	mig := []Device{{UUID: "GPU-p", Name: "NVIDIA A100", MIGEnabled: true}, {UUID: "MIG-1", Name: "NVIDIA A100 MIG 1g.5gb", Parent: "GPU-p", MIGProfile: "1g.5gb"}}
	if ok, _ := Eligible(mig, Request{Count: 1}, nil); len(ok) != 1 || ok[0].UUID != "MIG-1" {
		t.Errorf("MIG: %v", ok)
	}
	if ok, _ := Eligible(mig, Request{Count: 2}, nil); len(ok) != 0 {
		t.Errorf("MIG devices are never combined: %v", ok)
	}
}
