package compiler

// The settings of a pipeline task: resources (with Kubernetes quantities)
// and the retry policy.

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mlpipe/mlpipe/internal/yamlnode"
)

func parseResources(d *diags, n *yamlnode.Node) TaskResources {
	r := TaskResources{Pos: n.Pos}
	if !expectMap(d, n, "resources") {
		return r
	}
	checkKeys(d, n, "resources", "cpu", "memory", "gpu", "gpu_type")
	if c := n.Get("cpu"); c != nil {
		r.CPU = c.Text()
		if c.Kind == yamlnode.Map || c.Kind == yamlnode.Seq || !quantityPattern.MatchString(r.CPU) {
			d.node(c, "cpu must be a number of cores such as 2, 0.5 or 500m")
		} else if q, err := ParseQuantity(r.CPU); err != nil || q <= 0 {
			d.node(c, "cpu must be more than zero")
		}
	}
	if m := n.Get("memory"); m != nil {
		r.Memory = m.Text()
		if m.Kind == yamlnode.Map || m.Kind == yamlnode.Seq || !quantityPattern.MatchString(r.Memory) {
			d.node(m, "memory must be a quantity such as 4Gi, 512Mi or 2G")
		} else if q, err := ParseQuantity(r.Memory); err != nil || q < 1 {
			d.node(m, "memory must be at least one byte")
		}
	}
	if g := n.Get("gpu"); g != nil {
		if g.Kind == yamlnode.String && strings.Contains(g.Str, "${{") {
			v := parseValue(d, g)
			if v != nil {
				if v.Ref == nil || v.Ref.Kind != RefInput {
					d.node(g, "gpu must be a number or ${{ inputs.NAME }} (an Integer or Boolean pipeline input)")
				} else {
					r.GPURef = v.Ref
				}
			}
		} else if g.Kind != yamlnode.Int || g.Int < 0 || g.Int > 1024 {
			d.node(g, "gpu must be a whole number of GPUs or ${{ inputs.NAME }}")
		} else {
			r.GPU = int(g.Int)
		}
	}
	if gt := n.Get("gpu_type"); gt != nil {
		if gt.Kind != yamlnode.String || gt.Str == "" {
			d.node(gt, "gpu_type must be a string such as nvidia.com/gpu or NVIDIA_TESLA_A100")
		}
		r.GPUType = gt.Str
		if n.Get("gpu") == nil {
			d.node(gt, "gpu_type needs gpu: N")
		}
	}
	return r
}

// ParseQuantity parses a Kubernetes quantity ("500m", "2", "4Gi", "1.5G").
func ParseQuantity(s string) (float64, error) {
	s = strings.TrimSpace(s)
	m := quantityPattern.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a quantity", s)
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a quantity", s)
	}
	mult := map[string]float64{"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
		"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60}[m[3]]
	return f * mult, nil
}

func parseRetry(d *diags, n *yamlnode.Node) *Retry {
	r := &Retry{Factor: 2, MaxBackoff: time.Hour}
	if n.Kind == yamlnode.Int {
		if n.Int < 0 || n.Int > 100 {
			d.node(n, "retry must be between 0 and 100")
		}
		r.Max = int(n.Int)
		return r
	}
	if !expectMap(d, n, "retry") {
		return nil
	}
	checkKeys(d, n, "retry", "max", "backoff", "factor", "max_backoff")
	if m := n.Get("max"); m != nil {
		if m.Kind != yamlnode.Int || m.Int < 0 || m.Int > 100 {
			d.node(m, "retry max must be an integer between 0 and 100")
		} else {
			r.Max = int(m.Int)
		}
	} else {
		d.node(n, "retry needs max: N")
	}
	dur := func(key string, dst *time.Duration) {
		if v := n.Get(key); v != nil {
			dd, err := time.ParseDuration(v.Text())
			if v.Kind != yamlnode.String || err != nil || dd < 0 {
				d.node(v, "retry %s must be a duration such as 5s or 1m", key)
				return
			}
			*dst = dd
		}
	}
	dur("backoff", &r.Backoff)
	dur("max_backoff", &r.MaxBackoff)
	if f := n.Get("factor"); f != nil {
		switch {
		case f.Kind == yamlnode.Int && f.Int >= 1:
			r.Factor = float64(f.Int)
		case f.Kind == yamlnode.Float && f.Float >= 1 && f.Float < 1e6:
			r.Factor = f.Float
		default:
			d.node(f, "retry factor must be a number of at least 1")
		}
	}
	return r
}
