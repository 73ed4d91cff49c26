package compiler

import (
	"fmt"
	"sort"
	"strings"

	"github.com/mlpipe/mlpipe/internal/yamlnode"
)

// Diagnostic is one problem found in a user's file. Pos is set for
// pipeline.yaml and component.yaml files; Path (the field path) for IR.
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

// diags accumulates diagnostics for one file.
type diags struct {
	file string
	list Diagnostics
}

func (d *diags) at(p yamlnode.Pos, format string, args ...any) {
	d.list = append(d.list, Diagnostic{File: d.file, Pos: p, Msg: fmt.Sprintf(format, args...)})
}

func (d *diags) node(n *yamlnode.Node, format string, args ...any) {
	var p yamlnode.Pos
	if n != nil {
		p = n.Pos
	}
	d.at(p, format, args...)
}

func (d *diags) path(path, format string, args ...any) {
	d.list = append(d.list, Diagnostic{File: d.file, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *diags) addAll(ds Diagnostics) { d.list = append(d.list, ds...) }

func (d *diags) err() error {
	if len(d.list) == 0 {
		return nil
	}
	return d.list.Sorted()
}

// yamlError turns a yamlnode parse error into a diagnostic.
func yamlError(file string, err error) Diagnostics {
	if ye, ok := err.(*yamlnode.Error); ok {
		return Diagnostics{{File: file, Pos: ye.Pos, Msg: ye.Msg}}
	}
	return Diagnostics{{File: file, Msg: err.Error()}}
}
