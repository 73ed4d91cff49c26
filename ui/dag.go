package ui

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mlpipe/mlpipe/compiler"
	"github.com/mlpipe/mlpipe/contract"
	"github.com/mlpipe/mlpipe/kfpir"
)

// The run page's DAG: nodes in columns, one column per stage (as mlpipe
// plan computes them from the run's IR, or from the order the tasks ran in
// when the IR is gone), loop iterations collapsed into one node with a
// count, the tasks of a sub-DAG or condition boxed and labelled.

const (
	colW, nodeW, nodeH, rowH, groupGap, margin = 230, 190, 34, 44, 18, 20
	maxEdges                                   = 20000
)

var loopIndex = regexp.MustCompile(`\[[^\]/]*\]`)

// expansion says which loops the DAG shows iteration by iteration: all of
// them (?expand=1) or the nodes named (?expand=for-loop-2/train, one
// parameter per node); the others are one node with a count.
type expansion struct {
	all  bool
	keys map[string]bool
}

// allCollapsed collapses every loop.
var allCollapsed = expansion{}

func expansionOf(q url.Values) expansion {
	e := expansion{keys: map[string]bool{}}
	for _, v := range q["expand"] {
		if v == "1" {
			e.all = true
		} else if v != "" {
			e.keys[v] = true
		}
	}
	return e
}

// query is the expansion as URL parameters ("" when all is collapsed).
func (e expansion) query() string {
	if e.all {
		return "expand=1"
	}
	v := url.Values{}
	for _, k := range slices.Sorted(maps.Keys(e.keys)) {
		v.Add("expand", k)
	}
	return v.Encode()
}

// with returns e expanding key too.
func (e expansion) with(key string) expansion {
	out := expansion{all: e.all, keys: maps.Clone(e.keys)}
	if out.keys == nil {
		out.keys = map[string]bool{}
	}
	out.keys[key] = true
	return out
}

// nodeKey is the node a task belongs to: its path without loop indexes,
// unless its loop is expanded.
func nodeKey(path string, e expansion) string {
	k := loopIndex.ReplaceAllString(path, "")
	if e.all || e.keys[k] {
		return path
	}
	return k
}

// nodeState is the state of a node: of its task, or summed up over the
// iterations of a collapsed loop.
type nodeState struct {
	Path       string         `json:"path"`
	State      contract.State `json:"state"`
	Reason     string         `json:"reason,omitempty"`
	DurationMS int64          `json:"duration_ms,omitempty"`
	Count      int            `json:"count,omitempty"`
	Done       int            `json:"done,omitempty"`
	first      string         // path of the node's first task
}

// nodeStates sums the tasks of a run up per node.
func nodeStates(tasks []*contract.TaskRecord, exp expansion) map[string]*nodeState {
	by := map[string][]*contract.TaskRecord{}
	var keys []string
	for _, t := range tasks {
		if t.Kind == "dag" {
			continue
		}
		k := nodeKey(t.Path, exp)
		if by[k] == nil {
			keys = append(keys, k)
		}
		by[k] = append(by[k], t)
	}
	out := map[string]*nodeState{}
	for _, k := range keys {
		ts := by[k]
		ns := &nodeState{Path: k, Count: len(ts), first: ts[0].Path}
		var start, end time.Time
		count := map[contract.State]int{}
		for _, t := range ts {
			count[t.State]++
			if t.State.Final() {
				ns.Done++
			}
			if !t.StartedAt.IsZero() && (start.IsZero() || t.StartedAt.Before(start)) {
				start = t.StartedAt
			}
			if t.FinishedAt.After(end) {
				end = t.FinishedAt
			}
		}
		switch {
		case count[contract.Running] > 0:
			ns.State = contract.Running
		case count[contract.Failed] > 0:
			ns.State = contract.Failed
		case ns.Done < len(ts):
			ns.State = contract.Pending
		case count[contract.Canceled] > 0:
			ns.State = contract.Canceled
		case count[contract.Skipped] == len(ts):
			ns.State = contract.Skipped
		case count[contract.Cached] == len(ts):
			ns.State = contract.Cached
		default:
			ns.State = contract.Succeeded
		}
		for _, t := range ts {
			if t.State == ns.State && t.Error != "" && (ns.State == contract.Failed || ns.State == contract.Skipped || ns.State == contract.Canceled) {
				ns.Reason = clip(t.Error, 300)
				break
			}
		}
		if !start.IsZero() && !end.IsZero() && ns.State.Final() {
			ns.DurationMS = end.Sub(start).Milliseconds()
		}
		if ns.Count == 1 {
			ns.Count, ns.Done = 0, 0
		}
		out[k] = ns
	}
	return out
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// dagNode is one drawn node.
type dagNode struct {
	// Expand is the page's query showing this collapsed loop's
	// iterations, for a node with more than one.
	Expand string
	nodeState
	Label    string
	URL      string
	X, Y     int
	stage    int
	group    string
	order    int
	Duration string
	Sub      string // the second line: duration, iterations or reason
}

type dagGroup struct {
	Label      string
	X, Y, W, H int
}

type dagView struct {
	W, H   int
	Nodes  []*dagNode
	Edges  []string // SVG path data
	Groups []dagGroup
	Source string // where the stages come from
	Stages int
}

// layoutDAG lays the run's nodes out. ir may be nil (the IR file is gone).
func layoutDAG(runID string, ir *kfpir.IR, params map[string]any, tasks []*contract.TaskRecord, exp expansion) *dagView {
	v := &dagView{}
	stage := map[string]int{} // node key -> stage
	deps := map[string][]string{}
	var order []string
	if ir != nil {
		if pl, err := compiler.MakePlan(ir, params); err == nil {
			v.Source = "stages of the pipeline's plan (as mlpipe plan shows them)"
			byID := map[string]string{}
			for _, t := range pl.Tasks {
				byID[t.ID] = nodeKey(strings.ReplaceAll(t.Path, "[*]", ""), allCollapsed)
			}
			for _, t := range pl.Tasks {
				k := byID[t.ID]
				if s, ok := stage[k]; !ok || t.Stage < s {
					if !ok {
						order = append(order, k)
					}
					stage[k] = t.Stage
				}
				for _, d := range t.Deps {
					if dk := byID[d]; dk != k && !slices.Contains(deps[k], dk) {
						deps[k] = append(deps[k], dk)
					}
				}
			}
		}
	}
	if v.Source == "" {
		v.Source = "the order the tasks ran in (the run's IR is not available)"
	}
	// Tasks the plan does not know (or all of them, without a plan): a
	// stage after every task that finished before it started.
	rs := recordStages(tasks)
	for _, t := range tasks {
		if t.Kind == "dag" {
			continue
		}
		k := nodeKey(t.Path, allCollapsed)
		if _, ok := stage[k]; !ok {
			stage[k] = rs[t.Path]
			order = append(order, k)
		}
	}
	states := nodeStates(tasks, exp)
	var nodes []*dagNode
	add := func(key, first string, st *nodeState, s int) {
		n := &dagNode{stage: s, order: len(nodes)}
		if st != nil {
			n.nodeState = *st
		} else {
			n.nodeState = nodeState{Path: key, State: contract.Pending}
		}
		n.Path = key
		if first == "" {
			first = key
		}
		n.URL = taskURL(runID, first)
		n.Label = clip(contract.DisplayName(key), 28)
		if i := strings.LastIndexByte(key, '/'); i >= 0 {
			n.group = key[:i]
		}
		nodes = append(nodes, n)
	}
	// Each collapsed node once; an expanded loop's iterations each, in
	// the order they were recorded (or the node, before any ran).
	iterations := map[string][]string{}
	for _, t := range tasks {
		if t.Kind != "dag" {
			if k := nodeKey(t.Path, allCollapsed); nodeKey(t.Path, exp) != k {
				iterations[k] = append(iterations[k], t.Path)
			}
		}
	}
	for _, k := range order {
		if its := iterations[k]; len(its) > 0 {
			for _, p := range its {
				add(p, p, states[p], stage[k])
			}
			continue
		}
		st := states[k]
		first := ""
		if st != nil {
			first = st.first
		}
		add(k, first, st, stage[k])
		if st != nil && st.Count > 1 {
			nodes[len(nodes)-1].Expand = "?" + exp.with(k).query()
		}
	}
	// Columns: sorted by group so that a group's nodes are together.
	cols := map[int][]*dagNode{}
	for _, n := range nodes {
		cols[n.stage] = append(cols[n.stage], n)
		v.Stages = max(v.Stages, n.stage+1)
	}
	pos := map[string][]*dagNode{}
	for s := range v.Stages {
		col := cols[s]
		sort.SliceStable(col, func(i, j int) bool {
			if col[i].group != col[j].group {
				return col[i].group < col[j].group
			}
			return col[i].order < col[j].order
		})
		y := margin
		x := margin + s*colW
		for i, n := range col {
			if n.group != "" && (i == 0 || col[i-1].group != n.group) {
				y += groupGap
				v.Groups = append(v.Groups, dagGroup{Label: clip(n.group, 40), X: x - 6, Y: y - groupGap + 2, W: nodeW + 12})
			}
			n.X, n.Y = x, y
			if n.group != "" {
				g := &v.Groups[len(v.Groups)-1]
				g.H = y + nodeH + 5 - g.Y
			}
			y += rowH
			v.H = max(v.H, y+margin)
			pos[nodeKey(n.Path, allCollapsed)] = append(pos[nodeKey(n.Path, allCollapsed)], n)
		}
	}
	v.W = margin*2 + max(1, v.Stages)*colW
	for _, n := range nodes {
		n.Sub = nodeSub(&n.nodeState)
		for _, dk := range deps[nodeKey(n.Path, allCollapsed)] {
			for _, from := range pos[dk] {
				if len(v.Edges) >= maxEdges {
					break
				}
				x1, y1, x2, y2 := from.X+nodeW, from.Y+nodeH/2, n.X, n.Y+nodeH/2
				v.Edges = append(v.Edges, fmt.Sprintf("M%d %dC%d %d %d %d %d %d", x1, y1, (x1+x2)/2, y1, (x1+x2)/2, y2, x2, y2))
			}
		}
	}
	v.Nodes = nodes
	return v
}

// nodeSub is a node's second line.
func nodeSub(st *nodeState) string {
	var parts []string
	if st.Count > 1 {
		parts = append(parts, fmt.Sprintf("×%d (%d done)", st.Count, st.Done))
	}
	switch {
	case st.Reason != "":
		parts = append(parts, clip(st.Reason, 30))
	case st.DurationMS > 0:
		parts = append(parts, fmtDuration(time.Duration(st.DurationMS)*time.Millisecond))
	default:
		parts = append(parts, strings.ToLower(string(st.State)))
	}
	return strings.Join(parts, " · ")
}

// recordStages gives each task a stage from the times it ran: one after
// the highest stage of the tasks that finished before it started.
func recordStages(tasks []*contract.TaskRecord) map[string]int {
	var ts []*contract.TaskRecord
	for _, t := range tasks {
		if t.Kind != "dag" {
			ts = append(ts, t)
		}
	}
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].StartedAt.Before(ts[j].StartedAt) })
	out := map[string]int{}
	type done struct {
		at    time.Time
		stage int
	}
	var finished []done // by finish time, with the running maximum of stages
	for _, t := range ts {
		s := 0
		if !t.StartedAt.IsZero() {
			i := sort.Search(len(finished), func(i int) bool { return finished[i].at.After(t.StartedAt) })
			if i > 0 {
				s = finished[i-1].stage + 1
			}
		}
		out[t.Path] = s
		if !t.FinishedAt.IsZero() && !t.StartedAt.IsZero() {
			j := sort.Search(len(finished), func(i int) bool { return finished[i].at.After(t.FinishedAt) })
			m := s
			if j > 0 {
				m = max(m, finished[j-1].stage)
			}
			finished = slices.Insert(finished, j, done{t.FinishedAt, m})
			for k := j + 1; k < len(finished); k++ {
				finished[k].stage = max(finished[k].stage, m)
			}
		}
	}
	return out
}
