package gpu

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
)

// Request asks for GPUs.
type Request struct {
	Count int
	// Type is "" or "nvidia.com/gpu" for any NVIDIA GPU, a model name such
	// as NVIDIA_TESLA_A100, nvidia-tesla-a100, H100, or a MIG profile such
	// as 1g.10gb.
	Type string
	// MinFreeMemory excludes devices with less free memory (bytes).
	MinFreeMemory int64
}

// genericType reports whether t asks for any NVIDIA GPU.
func genericType(t string) bool {
	t = strings.ToLower(strings.TrimSpace(t))
	return t == "" || t == "nvidia.com/gpu" || t == "gpu" || t == "nvidia"
}

func tokens(s string) []string {
	f := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '.' })
	var out []string
	for _, t := range f {
		switch t {
		case "nvidia", "tesla", "geforce", "com", "gpu", "mock":
			continue
		}
		out = append(out, t)
	}
	return out
}

// Matches reports whether a device satisfies a requested type: every word
// of the type ("a100", "80gb"), vendor words aside, must be a word of the
// device name, so A10 does not match A100.
func Matches(d Device, typ string) bool {
	if genericType(typ) {
		return true
	}
	if d.MIGProfile != "" && strings.EqualFold(strings.TrimSpace(typ), d.MIGProfile) {
		return true
	}
	want := tokens(typ)
	if len(want) == 0 {
		return true
	}
	have := map[string]bool{}
	for _, t := range tokens(d.Name) {
		have[t] = true
		// "a100-sxm4-40gb" style names: also split letter/digit runs such
		// as "sxm4" no further; model words stand alone.
	}
	for _, w := range want {
		if !have[w] {
			return false
		}
	}
	return true
}

// Eligible filters devices for a request: type, free memory, and no
// processes that mlpipe did not start (own lists the PIDs of steps mlpipe
// runs). It returns the reasons devices were skipped, for notes.
func Eligible(devs []Device, req Request, own map[int]bool) (ok []Device, skipped []string) {
	for _, d := range devs {
		switch {
		case !Matches(d, req.Type):
			continue
		case req.Count > 1 && d.Parent != "":
			// MIG devices are single-device allocations.
			continue
		case d.MIGEnabled && d.Parent == "":
			skipped = append(skipped, fmt.Sprintf("%s is in MIG mode (use its MIG devices)", d.UUID))
			continue
		case req.MinFreeMemory > 0 && d.MemoryFree < req.MinFreeMemory:
			skipped = append(skipped, fmt.Sprintf("%s has %d MiB free, less than the %d MiB asked", d.UUID, d.MemoryFree>>20, req.MinFreeMemory>>20))
			continue
		}
		var foreign []string
		for _, p := range d.Processes {
			if !own[p.PID] {
				foreign = append(foreign, fmt.Sprint(p.PID))
			}
		}
		if len(foreign) > 0 {
			skipped = append(skipped, fmt.Sprintf("%s is busy with processes mlpipe did not start (pid %s)", d.UUID, strings.Join(foreign, ", ")))
			continue
		}
		ok = append(ok, d)
	}
	return ok, skipped
}

// Choose picks n devices from free ones. One device: the best fit (the
// smallest that will do, then the one least connected to the others, so
// that big and well-linked GPUs stay free). Several: the set with the best
// sum of pairwise connection scores. It returns nil when fewer than n are
// free. The result is deterministic.
func Choose(free []Device, n int, topo Topology) []Device {
	if n <= 0 || len(free) < n {
		return nil
	}
	cands := append([]Device(nil), free...)
	sort.Slice(cands, func(i, j int) bool {
		return cands[i].Index < cands[j].Index || (cands[i].Index == cands[j].Index && cands[i].UUID < cands[j].UUID)
	})
	if n == 1 {
		best := 0
		for i := 1; i < len(cands); i++ {
			a, b := cands[i], cands[best]
			if a.MemoryTotal != b.MemoryTotal {
				if a.MemoryTotal < b.MemoryTotal {
					best = i
				}
				continue
			}
			if connectivity(a, cands, topo) < connectivity(b, cands, topo) {
				best = i
			}
		}
		return []Device{cands[best]}
	}
	if len(cands) == n {
		return cands
	}
	// Brute force is cheap at workstation scale (C(16,8) = 12,870); past
	// a bound, grow a set greedily from each start.
	if binom(len(cands), n) <= 20000 {
		var best []int
		bestScore := -1
		idx := make([]int, n)
		var rec func(start, depth int)
		rec = func(start, depth int) {
			if depth == n {
				s := setScore(cands, idx, topo)
				if s > bestScore {
					bestScore = s
					best = append(best[:0], idx...)
				}
				return
			}
			for i := start; i <= len(cands)-(n-depth); i++ {
				idx[depth] = i
				rec(i+1, depth+1)
			}
		}
		rec(0, 0)
		out := make([]Device, n)
		for i, k := range best {
			out[i] = cands[k]
		}
		return out
	}
	var best []int
	bestScore := -1
	for s := range cands {
		set := []int{s}
		used := map[int]bool{s: true}
		for len(set) < n {
			pick, pickScore := -1, -1
			for j := range cands {
				if used[j] {
					continue
				}
				sc := 0
				for _, k := range set {
					sc += topo.Score(cands[j].UUID, cands[k].UUID)
				}
				if sc > pickScore {
					pick, pickScore = j, sc
				}
			}
			set = append(set, pick)
			used[pick] = true
		}
		sort.Ints(set)
		if sc := setScore(cands, set, topo); sc > bestScore {
			best, bestScore = set, sc
		}
	}
	out := make([]Device, n)
	for i, k := range best {
		out[i] = cands[k]
	}
	return out
}

func connectivity(d Device, all []Device, topo Topology) int {
	s := 0
	for _, o := range all {
		if o.UUID != d.UUID {
			s += topo.Score(d.UUID, o.UUID)
		}
	}
	return s
}

func setScore(cands []Device, idx []int, topo Topology) int {
	s := 0
	for i := 0; i < len(idx); i++ {
		for j := i + 1; j < len(idx); j++ {
			s += topo.Score(cands[idx[i]].UUID, cands[idx[j]].UUID)
		}
	}
	return s
}

func binom(n, k int) int {
	if k > n-k {
		k = n - k
	}
	r := 1
	for i := 1; i <= k; i++ {
		r = r * (n - k + i) / i
		if r > 1<<30 {
			return r
		}
	}
	return r
}
