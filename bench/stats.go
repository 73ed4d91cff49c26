package bench

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Stats summarises a sample of durations in milliseconds.
type Stats struct {
	N      int     `json:"n"`
	Min    float64 `json:"min_ms"`
	Median float64 `json:"median_ms"`
	P95    float64 `json:"p95_ms"`
	Mean   float64 `json:"mean_ms"`
	StdDev float64 `json:"stddev_ms"`
	// CV is the coefficient of variation (stddev / mean).
	CV      float64   `json:"cv"`
	Samples []float64 `json:"samples_ms"`
}

// Unstable reports whether the spread is too wide to trust the numbers:
// a coefficient of variation above 10 %, or fewer than 5 samples.
func (s Stats) Unstable() bool { return s.N < 5 || s.CV > 0.10 }

// Compute returns the statistics of xs (milliseconds).
func Compute(xs []float64) Stats {
	s := Stats{N: len(xs), Samples: append([]float64(nil), xs...)}
	if len(xs) == 0 {
		return s
	}
	sorted := append([]float64(nil), xs...)
	sort.Float64s(sorted)
	s.Min = sorted[0]
	s.Median = quantile(sorted, 0.5)
	s.P95 = quantile(sorted, 0.95)
	var sum float64
	for _, x := range xs {
		sum += x
	}
	s.Mean = sum / float64(len(xs))
	if len(xs) > 1 {
		var ss float64
		for _, x := range xs {
			ss += (x - s.Mean) * (x - s.Mean)
		}
		s.StdDev = math.Sqrt(ss / float64(len(xs)-1))
	}
	if s.Mean > 0 {
		s.CV = s.StdDev / s.Mean
	}
	return s
}

// quantile interpolates linearly between order statistics (type 7, as R
// and numpy do by default). sorted must be sorted.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 1 {
		return sorted[0]
	}
	h := q * float64(len(sorted)-1)
	lo := math.Floor(h)
	hi := math.Ceil(h)
	return sorted[int(lo)] + (h-lo)*(sorted[int(hi)]-sorted[int(lo)])
}

// Median of xs.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	sorted := append([]float64(nil), xs...)
	sort.Float64s(sorted)
	return quantile(sorted, 0.5)
}

// Change is the relative change of the median from a baseline to a new
// sample, with a 95 % bootstrap confidence interval.
type Change struct {
	Baseline float64 `json:"baseline_median_ms"`
	Current  float64 `json:"current_median_ms"`
	Pct      float64 `json:"change_pct"`
	Low      float64 `json:"ci_low_pct"`
	High     float64 `json:"ci_high_pct"`
}

// Significant reports whether the interval excludes zero.
func (c Change) Significant() bool { return c.Low > 0 || c.High < 0 }

// Compare bootstraps the relative change of the median (percentile
// interval over resamples of both samples). seed makes it reproducible.
func Compare(base, cur []float64, resamples int, seed uint64) Change {
	c := Change{Baseline: Median(base), Current: Median(cur)}
	if len(base) == 0 || len(cur) == 0 || c.Baseline == 0 {
		c.Pct, c.Low, c.High = math.NaN(), math.NaN(), math.NaN()
		return c
	}
	c.Pct = 100 * (c.Current - c.Baseline) / c.Baseline
	if resamples <= 0 {
		resamples = 5000
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	diffs := make([]float64, resamples)
	bb := make([]float64, len(base))
	cb := make([]float64, len(cur))
	for i := range diffs {
		for j := range bb {
			bb[j] = base[rng.IntN(len(base))]
		}
		for j := range cb {
			cb[j] = cur[rng.IntN(len(cur))]
		}
		mb := Median(bb)
		if mb == 0 {
			diffs[i] = 0
			continue
		}
		diffs[i] = 100 * (Median(cb) - mb) / mb
	}
	sort.Float64s(diffs)
	c.Low = quantile(diffs, 0.025)
	c.High = quantile(diffs, 0.975)
	return c
}
