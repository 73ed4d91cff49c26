package compiler

// The settings of a pipeline task: resources (with Kubernetes quantities)
// and the retry policy.

import (
	"strings"
	"time"

	"github.com/mlpipe/mlpipe/internal/diag"
	"github.com/mlpipe/mlpipe/internal/yamlnode"
	"github.com/mlpipe/mlpipe/kfpir"
)

func parseResources(d *diag.List, n *yamlnode.Node) TaskResources {
	r := TaskResources{Pos: n.Pos}
	if !expectMap(d, n, "resources") {
		return r
	}
	checkKeys(d, n, "resources", "cpu", "memory", "gpu", "gpu_type")
	if c := n.Get("cpu"); c != nil {
		r.CPU = c.Text()
		if c.Kind == yamlnode.Map || c.Kind == yamlnode.Seq || !kfpir.IsQuantity(r.CPU) {
			d.Node(c, "cpu must be a number of cores such as 2, 0.5 or 500m")
		} else if q, err := kfpir.ParseQuantity(r.CPU); err != nil || q <= 0 {
			d.Node(c, "cpu must be more than zero")
		}
	}
	if m := n.Get("memory"); m != nil {
		r.Memory = m.Text()
		if m.Kind == yamlnode.Map || m.Kind == yamlnode.Seq || !kfpir.IsQuantity(r.Memory) {
			d.Node(m, "memory must be a quantity such as 4Gi, 512Mi or 2G")
		} else if q, err := kfpir.ParseQuantity(r.Memory); err != nil || q < 1 {
			d.Node(m, "memory must be at least one byte")
		}
	}
	if g := n.Get("gpu"); g != nil {
		if g.Kind == yamlnode.String && strings.Contains(g.Str, "${{") {
			v := parseValue(d, g)
			if v != nil {
				if v.Ref == nil || v.Ref.Kind != RefInput {
					d.Node(g, "gpu must be a number or ${{ inputs.NAME }} (an Integer or Boolean pipeline input)")
				} else {
					r.GPURef = v.Ref
				}
			}
		} else if g.Kind != yamlnode.Int || g.Int < 0 || g.Int > 1024 {
			d.Node(g, "gpu must be a whole number of GPUs or ${{ inputs.NAME }}")
		} else {
			r.GPU = int(g.Int)
		}
	}
	if gt := n.Get("gpu_type"); gt != nil {
		if gt.Kind != yamlnode.String || gt.Str == "" {
			d.Node(gt, "gpu_type must be a string such as nvidia.com/gpu or NVIDIA_TESLA_A100")
		}
		r.GPUType = gt.Str
		if n.Get("gpu") == nil {
			d.Node(gt, "gpu_type needs gpu: N")
		}
	}
	return r
}

func parseRetry(d *diag.List, n *yamlnode.Node) *Retry {
	r := &Retry{Factor: 2, MaxBackoff: time.Hour}
	if n.Kind == yamlnode.Int {
		if n.Int < 0 || n.Int > 100 {
			d.Node(n, "retry must be between 0 and 100")
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
			d.Node(m, "retry max must be an integer between 0 and 100")
		} else {
			r.Max = int(m.Int)
		}
	} else {
		d.Node(n, "retry needs max: N")
	}
	dur := func(key string, dst *time.Duration) {
		if v := n.Get(key); v != nil {
			dd, err := time.ParseDuration(v.Text())
			if v.Kind != yamlnode.String || err != nil || dd < 0 {
				d.Node(v, "retry %s must be a duration such as 5s or 1m", key)
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
			d.Node(f, "retry factor must be a number of at least 1")
		}
	}
	return r
}
