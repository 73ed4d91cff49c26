package graph

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func build(edges map[string][]string, order ...string) *Graph {
	var g Graph
	for _, n := range order {
		g.Add(n, edges[n]...)
	}
	return &g
}

func TestGraph(t *testing.T) {
	tests := []struct {
		name    string
		edges   map[string][]string
		order   []string
		cycles  [][]string
		topo    []string
		heights map[string]int
		depths  map[string]int
	}{
		{
			name:    "diamond",
			edges:   map[string][]string{"b": {"a"}, "c": {"a"}, "d": {"b", "c"}},
			order:   []string{"d", "c", "b", "a"},
			topo:    []string{"a", "b", "c", "d"},
			heights: map[string]int{"a": 3, "b": 2, "c": 2, "d": 1},
			depths:  map[string]int{"a": 0, "b": 1, "c": 1, "d": 2},
		},
		{
			name:    "unknown dependencies are ignored",
			edges:   map[string][]string{"a": {"nope"}},
			order:   []string{"a"},
			topo:    []string{"a"},
			heights: map[string]int{"a": 1},
			depths:  map[string]int{"a": 0},
		},
		{
			name:   "cycle named once",
			edges:  map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}},
			order:  []string{"a", "b", "c", "d"},
			cycles: [][]string{{"a", "b", "c", "a"}},
		},
		{
			name:    "self loop",
			edges:   map[string][]string{"a": {"a"}},
			order:   []string{"a"},
			cycles:  [][]string{{"a", "a"}},
			heights: map[string]int{"a": 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := build(tc.edges, tc.order...)
			if d := cmp.Diff(tc.cycles, g.Cycles()); d != "" {
				t.Errorf("cycles (-want +got):\n%s", d)
			}
			topo, err := g.TopoOrder()
			if tc.cycles != nil {
				var ce *CycleError
				if !errors.As(err, &ce) || ce.Path[0] != tc.cycles[0][0] {
					t.Errorf("TopoOrder error = %v, want the cycle", err)
				}
			} else if d := cmp.Diff(tc.topo, topo); d != "" || err != nil {
				t.Errorf("topo (-want +got):\n%s %v", d, err)
			}
			if tc.heights == nil { // on a cycle: any finite value
				return
			}
			if d := cmp.Diff(tc.heights, g.Heights()); d != "" {
				t.Errorf("heights (-want +got):\n%s", d)
			}
			if tc.depths == nil { // on a cycle: any finite value
				return
			}
			if d := cmp.Diff(tc.depths, g.Depths()); d != "" {
				t.Errorf("depths (-want +got):\n%s", d)
			}
		})
	}
}
