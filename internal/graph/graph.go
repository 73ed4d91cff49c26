// Package graph holds the dependency-graph algorithms that the pipeline
// checker, the IR validator, the planner and the runner share: cycles with
// their path, a deterministic topological order, and longest paths (a
// task's stage, and its height for scheduling). Nodes are names; an edge
// from n to d means n depends on d (d runs first).
package graph

import (
	"fmt"
	"slices"
	"strings"
)

// Graph is a dependency graph. The zero value is empty and ready to use.
type Graph struct {
	order []string            // nodes in the order they were added
	deps  map[string][]string // node → what it depends on, as given
}

// Add adds node (once) with dependencies. Dependencies that are never
// added as nodes are ignored by the algorithms (the callers report unknown
// names themselves).
func (g *Graph) Add(node string, deps ...string) {
	if g.deps == nil {
		g.deps = map[string][]string{}
	}
	if _, ok := g.deps[node]; !ok {
		g.order = append(g.order, node)
		g.deps[node] = nil
	}
	g.deps[node] = append(g.deps[node], deps...)
}

// Has reports whether node was added.
func (g *Graph) Has(node string) bool {
	_, ok := g.deps[node]
	return ok
}

// Nodes returns the nodes in the order they were added.
func (g *Graph) Nodes() []string { return slices.Clone(g.order) }

func (g *Graph) known(deps []string) []string {
	out := deps[:0:0]
	for _, d := range deps {
		if g.Has(d) {
			out = append(out, d)
		}
	}
	return out
}

// Cycles returns the dependency cycles found by a depth-first walk from
// each node in the order they were added, each as the path n, d1, ..., n
// (n depends on d1, ...), each cycle once.
func (g *Graph) Cycles() [][]string {
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var out [][]string
	seen := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		state[n] = active
		stack = append(stack, n)
		for _, d := range g.known(g.deps[n]) {
			switch state[d] {
			case unseen:
				visit(d)
			case active:
				i := slices.Index(stack, d)
				cyc := append(slices.Clone(stack[i:]), d)
				if key := strings.Join(cyc, "\x00"); !seen[key] {
					seen[key] = true
					out = append(out, cyc)
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
	}
	for _, n := range g.order {
		if state[n] == unseen {
			visit(n)
		}
	}
	return out
}

// Cycle returns the first cycle Cycles finds, or nil.
func (g *Graph) Cycle() []string {
	if c := g.Cycles(); len(c) > 0 {
		return c[0]
	}
	return nil
}

// CycleError is a dependency cycle, named.
type CycleError struct{ Path []string }

func (e *CycleError) Error() string {
	return "dependency cycle: " + strings.Join(e.Path, " -> ")
}

// TopoOrder returns the nodes with every node after what it depends on;
// among nodes ready at the same time, by name, so that the order is the
// same every time. A cycle is a *CycleError.
func (g *Graph) TopoOrder() ([]string, error) {
	indeg := map[string]int{}
	dependents := map[string][]string{}
	for _, n := range g.order {
		indeg[n] += 0
		for _, d := range g.known(g.deps[n]) {
			indeg[n]++
			dependents[d] = append(dependents[d], n)
		}
	}
	var ready, out []string
	for _, n := range g.order {
		if indeg[n] == 0 {
			ready = append(ready, n)
		}
	}
	slices.Sort(ready)
	for len(ready) > 0 {
		n := ready[0]
		ready = ready[1:]
		out = append(out, n)
		for _, m := range dependents[n] {
			indeg[m]--
			if indeg[m] == 0 {
				i, _ := slices.BinarySearch(ready, m)
				ready = slices.Insert(ready, i, m)
			}
		}
	}
	if len(out) != len(g.order) {
		if c := g.Cycle(); c != nil {
			return nil, &CycleError{Path: c}
		}
		return nil, fmt.Errorf("dependency cycle")
	}
	return out, nil
}

// Heights returns, for each node, the number of nodes on the longest chain
// from it through the nodes that depend on it (1 for a node nothing
// depends on): how much is left to run after it starts. Nodes on a cycle
// get a finite value.
func (g *Graph) Heights() map[string]int {
	dependents := map[string][]string{}
	for _, n := range g.order {
		for _, d := range g.known(g.deps[n]) {
			dependents[d] = append(dependents[d], n)
		}
	}
	h := map[string]int{}
	onPath := map[string]bool{}
	var visit func(string) int
	visit = func(n string) int {
		if v, ok := h[n]; ok {
			return v
		}
		if onPath[n] {
			return 0 // a cycle: validation reports it
		}
		onPath[n] = true
		best := 0
		for _, m := range dependents[n] {
			best = max(best, visit(m))
		}
		onPath[n] = false
		h[n] = best + 1
		return best + 1
	}
	for _, n := range g.order {
		visit(n)
	}
	return h
}

// Depths returns, for each node, the number of nodes on the longest chain
// of its dependencies (0 for a node that depends on nothing): its stage.
func (g *Graph) Depths() map[string]int {
	d := map[string]int{}
	onPath := map[string]bool{}
	var visit func(string) int
	visit = func(n string) int {
		if v, ok := d[n]; ok {
			return v
		}
		if onPath[n] {
			return 0
		}
		onPath[n] = true
		best := 0
		for _, dep := range g.known(g.deps[n]) {
			best = max(best, visit(dep)+1)
		}
		onPath[n] = false
		d[n] = best
		return best
	}
	for _, n := range g.order {
		visit(n)
	}
	return d
}
