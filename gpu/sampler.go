package gpu

import (
	"context"
	"sync"
	"time"

	"github.com/mlpipe/mlpipe/contract"
)

// Sample implements contract.GPUAllocator: it reads the GPUs every
// SampleEvery until the returned function is called, which stops and
// returns the samples (a final one included). Energy is reported since the
// first sample, from the driver's energy counter where it has one.
func (a *Allocator) Sample(ctx context.Context, uuids []string) func() []contract.GPUSample {
	if len(uuids) == 0 {
		return func() []contract.GPUSample { return nil }
	}
	var mu sync.Mutex
	var out []contract.GPUSample
	first := map[string]int64{}
	read := func() {
		for _, u := range uuids {
			r, err := a.inv.Read(u)
			if err != nil {
				continue
			}
			s := contract.GPUSample{Time: r.Time, UUID: u, Util: r.Util, MemUsed: r.MemUsed, PowerWatts: r.PowerWatts}
			mu.Lock()
			if r.EnergyMJ >= 0 {
				if _, ok := first[u]; !ok {
					first[u] = r.EnergyMJ
				}
				s.EnergyJ = float64(r.EnergyMJ-first[u]) / 1000
			}
			out = append(out, s)
			mu.Unlock()
		}
	}
	read()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(a.opts.SampleEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				read()
			}
		}
	}()
	var once sync.Once
	return func() []contract.GPUSample {
		once.Do(func() {
			close(stop)
			<-done
			read()
		})
		mu.Lock()
		defer mu.Unlock()
		return append([]contract.GPUSample(nil), out...)
	}
}

// Summary condenses samples per GPU: mean and max utilisation (-1 when
// not available), peak memory, mean power and energy.
type Summary struct {
	UUID      string  `json:"uuid"`
	Samples   int     `json:"samples"`
	UtilMean  float64 `json:"util_mean"`
	UtilMax   float64 `json:"util_max"`
	MemPeak   int64   `json:"mem_peak_bytes"`
	PowerMean float64 `json:"power_mean_w"`
	EnergyJ   float64 `json:"energy_j"`
}

// Summarize condenses samples per GPU, in the order the GPUs first appear.
func Summarize(samples []contract.GPUSample) []Summary {
	var order []string
	by := map[string]*Summary{}
	utilN := map[string]int{}
	powN := map[string]int{}
	for _, s := range samples {
		sm, ok := by[s.UUID]
		if !ok {
			sm = &Summary{UUID: s.UUID, UtilMean: -1, UtilMax: -1}
			by[s.UUID] = sm
			order = append(order, s.UUID)
		}
		sm.Samples++
		if s.Util >= 0 {
			if utilN[s.UUID] == 0 {
				sm.UtilMean, sm.UtilMax = 0, 0
			}
			utilN[s.UUID]++
			sm.UtilMean += s.Util
			sm.UtilMax = max(sm.UtilMax, s.Util)
		}
		sm.MemPeak = max(sm.MemPeak, s.MemUsed)
		if s.PowerWatts >= 0 {
			powN[s.UUID]++
			sm.PowerMean += s.PowerWatts
		}
		sm.EnergyJ = max(sm.EnergyJ, s.EnergyJ)
	}
	out := make([]Summary, 0, len(order))
	for _, u := range order {
		sm := by[u]
		if n := utilN[u]; n > 0 {
			sm.UtilMean /= float64(n)
		}
		if n := powN[u]; n > 0 {
			sm.PowerMean /= float64(n)
		}
		out = append(out, *sm)
	}
	return out
}
