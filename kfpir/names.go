package kfpir

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"

	"github.com/mlpipe/mlpipe/internal/diag"
	"github.com/mlpipe/mlpipe/internal/yamlnode"
)

// MaxNameLen is the longest task, component, executor, input or output name
// accepted in IR. Names become single file-name components (at most 255
// bytes on Linux) with a short prefix or suffix.
const MaxNameLen = 200

// MaxNesting is the deepest nesting of DAGs (sub-pipelines, loops,
// conditions) that the planner and the runner expand.
const MaxNesting = 64

// MaxDisplayNameLen is the longest taskInfo.name accepted.
const MaxDisplayNameLen = 256

// SafeName reports whether name may be used as a task key, component name,
// executor label, input or output name of an IR document. The set is what
// the KFP SDK emits (it sanitises names to [a-z0-9-], Python identifiers and
// "pipelinechannel--..." inputs): ASCII letters, digits, '_' and '-', not
// starting with '-', at most MaxNameLen bytes. mlpipe builds directory and
// file names from these names, so anything else (a '/', "..", '.', '[',
// control characters) is refused when the IR is loaded: a stranger's IR must
// never name a path outside the run's directory, and two tasks of a run
// must never share one (loop iterations are written "name.N", see
// docs/pipeline-format.md).
func SafeName(name string) bool {
	if name == "" || len(name) > MaxNameLen || name[0] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// SafeDisplayName reports whether s may be a taskInfo.name. KFP's SDK puts
// a task's display name there (set_display_name accepts free text, spaces
// included), so the set is wider than SafeName's: printable UTF-8 without
// control characters, at most MaxDisplayNameLen bytes. mlpipe never builds
// a path from it.
func SafeDisplayName(s string) bool {
	if s == "" || len(s) > MaxDisplayNameLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	return true
}

const nameRule = "must be 1-200 ASCII letters, digits, '_' or '-' (not starting with '-'), as the KFP SDK writes names"

// checkNames reports every name of the IR outside the safe sets.
func checkNames(d *diag.List, ir *IR) {
	name := func(path, n string) {
		if !SafeName(n) {
			d.Path(path, "name %s %s", quoteName(n), nameRule)
		}
	}
	for _, label := range slices.Sorted(maps.Keys(ir.Executors)) {
		name("deploymentSpec.executors."+label, label)
	}
	spec := ir.Spec
	if spec.GetRoot() != nil {
		checkComponentNames(d, "root", spec.GetRoot(), name)
	}
	for _, c := range slices.Sorted(maps.Keys(spec.GetComponents())) {
		name("components."+c, c)
		checkComponentNames(d, "components."+c, spec.GetComponents()[c], name)
	}
}

func checkComponentNames(d *diag.List, path string, cs *pb.ComponentSpec, name func(path, n string)) {
	for n := range cs.GetInputDefinitions().GetParameters() {
		name(path+".inputDefinitions.parameters."+n, n)
	}
	for n := range cs.GetInputDefinitions().GetArtifacts() {
		name(path+".inputDefinitions.artifacts."+n, n)
	}
	for n := range cs.GetOutputDefinitions().GetParameters() {
		name(path+".outputDefinitions.parameters."+n, n)
	}
	for n := range cs.GetOutputDefinitions().GetArtifacts() {
		name(path+".outputDefinitions.artifacts."+n, n)
	}
	dag := cs.GetDag()
	for n := range dag.GetOutputs().GetParameters() {
		name(path+".dag.outputs.parameters."+n, n)
	}
	for n := range dag.GetOutputs().GetArtifacts() {
		name(path+".dag.outputs.artifacts."+n, n)
	}
	for key, t := range dag.GetTasks() {
		tp := path + ".dag.tasks." + key
		name(tp, key)
		if dn := t.GetTaskInfo().GetName(); dn != "" && !SafeDisplayName(dn) {
			d.Path(tp+".taskInfo.name", "%s must be printable text of at most %d bytes, without control characters", quoteName(dn), MaxDisplayNameLen)
		}
		if ref := t.GetComponentRef().GetName(); ref != "" {
			name(tp+".componentRef.name", ref)
		}
		for n := range t.GetInputs().GetParameters() {
			name(tp+".inputs.parameters."+n, n)
		}
		for n := range t.GetInputs().GetArtifacts() {
			name(tp+".inputs.artifacts."+n, n)
		}
	}
}

// quoteName quotes a name for a message, shortening a very long one.
func quoteName(n string) string {
	if len(n) > 80 {
		return fmt.Sprintf("%q... (%d bytes)", n[:80], len(n))
	}
	return fmt.Sprintf("%q", n)
}

// withLines gives IR diagnostics that carry only a field path the line and
// column of that field in src, when src is YAML or JSON the YAML parser
// reads. It parses src again, so it is only called once there are errors.
func withLines(src []byte, ds diag.Diagnostics) diag.Diagnostics {
	if len(src) == 0 || len(ds) == 0 {
		return ds
	}
	docs, err := yamlnode.ParseAll(src)
	if err != nil {
		return ds
	}
	var spec *yamlnode.Node
	for _, doc := range docs {
		if w := doc.Get("pipelineSpec"); w != nil && w.Kind == yamlnode.Map {
			doc = w
		} else if w := doc.Get("pipeline_spec"); w != nil && w.Kind == yamlnode.Map {
			doc = w
		}
		if doc.Get("root") != nil {
			spec = doc
			break
		}
	}
	if spec == nil {
		return ds
	}
	out := append(diag.Diagnostics(nil), ds...)
	for i, dg := range out {
		if dg.Path != "" && dg.Pos.Line == 0 {
			out[i].Pos = locate(spec, dg.Path)
		}
	}
	return out.Sorted()
}

// locate finds the position of a dotted field path in a document. Keys may
// themselves hold dots (an invalid name being reported), so at each level
// the longest key that matches the rest of the path wins. It returns the
// position of the deepest field found.
func locate(n *yamlnode.Node, path string) yamlnode.Pos {
	pos := n.Pos
	rest := path
	for rest != "" && n != nil && n.Kind == yamlnode.Map {
		best := -1
		for i, k := range n.Keys {
			if (rest == k.Str || strings.HasPrefix(rest, k.Str+".")) && (best < 0 || len(k.Str) > len(n.Keys[best].Str)) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		pos = n.Keys[best].Pos
		rest = strings.TrimPrefix(rest[len(n.Keys[best].Str):], ".")
		n = n.Vals[best]
	}
	return pos
}

// MaxExpandedTasks bounds the tasks an IR expands into, sub-DAGs unfolded
// (loops counted once): a few kilobytes of components that each call the
// next twice would otherwise unfold into 2^40 tasks.
const MaxExpandedTasks = 100_000

// ExpandedTasks counts the executor tasks of an IR with every sub-DAG
// unfolded (each loop body counted once), saturating just above
// MaxExpandedTasks. Component reference cycles count as nothing more
// (validation reports them).
func ExpandedTasks(spec *pb.PipelineSpec) int {
	memo := map[string]int{}
	active := map[string]bool{}
	var count func(cs *pb.ComponentSpec, name string) int
	count = func(cs *pb.ComponentSpec, name string) int {
		if cs.GetDag() == nil {
			return 1
		}
		if v, ok := memo[name]; ok && name != "" {
			return v
		}
		if active[name] {
			return 0
		}
		active[name] = true
		n := 0
		for _, t := range cs.GetDag().GetTasks() {
			ref := t.GetComponentRef().GetName()
			callee := spec.GetComponents()[ref]
			if callee == nil {
				n++
			} else {
				n += count(callee, ref)
			}
			if n > MaxExpandedTasks {
				n = MaxExpandedTasks + 1
				break
			}
		}
		active[name] = false
		if name != "" {
			memo[name] = n
		}
		return n
	}
	return count(spec.GetRoot(), "")
}
