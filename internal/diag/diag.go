// Package diag holds the diagnostics mlpipe reports for a user's file: a
// problem with the file, the line and column or the field path, and a
// message. A list of them is an error that marks invalid input (exit code
// 2 on the command line). The pipeline compiler and the IR loader share it.
package diag

import (
	"fmt"
	"sort"
	"strings"

	"github.com/mlpipe/mlpipe/internal/yamlnode"
)

// Diagnostic is one problem found in a user's file. Pos is set for
// pipeline.yaml and component.yaml files and for IR where the field could
// be located; Path (the field path) for IR.
type Diagnostic struct {
	File string
	Pos  yamlnode.Pos
	Path string
	Msg  string
}

func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.File)
	if d.Pos.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", d.Pos.Line, d.Pos.Col)
	}
	b.WriteString(": ")
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	b.WriteString(d.Msg)
	return b.String()
}

// Diagnostics is a list of problems; as an error it marks invalid input
// (exit code 2 on the command line).
type Diagnostics []Diagnostic

func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// InvalidInput marks Diagnostics as the user's mistake rather than mlpipe's.
func (ds Diagnostics) InvalidInput() bool { return true }

// Sorted returns the diagnostics ordered by file, line, column and path.
func (ds Diagnostics) Sorted() Diagnostics {
	out := append(Diagnostics(nil), ds...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Col != b.Pos.Col {
			return a.Pos.Col < b.Pos.Col
		}
		return a.Path < b.Path
	})
	return out
}

// Errorf is a single diagnostic about a whole file, as an error.
func Errorf(file, format string, args ...any) error {
	return Diagnostics{{File: file, Msg: fmt.Sprintf(format, args...)}}
}

// List accumulates the diagnostics of one file.
type List struct {
	File  string
	Items Diagnostics
}

// At adds a problem at a position.
func (l *List) At(p yamlnode.Pos, format string, args ...any) {
	l.Items = append(l.Items, Diagnostic{File: l.File, Pos: p, Msg: fmt.Sprintf(format, args...)})
}

// Node adds a problem at a node's position (none when n is nil).
func (l *List) Node(n *yamlnode.Node, format string, args ...any) {
	var p yamlnode.Pos
	if n != nil {
		p = n.Pos
	}
	l.At(p, format, args...)
}

// Path adds a problem at a field path (IR documents).
func (l *List) Path(path, format string, args ...any) {
	l.Items = append(l.Items, Diagnostic{File: l.File, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// AddAll adds diagnostics found elsewhere.
func (l *List) AddAll(ds Diagnostics) { l.Items = append(l.Items, ds...) }

// Err is the sorted list as an error, or nil when nothing was found.
func (l *List) Err() error {
	if len(l.Items) == 0 {
		return nil
	}
	return l.Items.Sorted()
}

// YAMLError turns a yamlnode parse error into a diagnostic.
func YAMLError(file string, err error) Diagnostics {
	if ye, ok := err.(*yamlnode.Error); ok {
		return Diagnostics{{File: file, Pos: ye.Pos, Msg: ye.Msg}}
	}
	return Diagnostics{{File: file, Msg: err.Error()}}
}
