package runner

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ExecutorInput is the JSON a component receives through {{$}}
// (docs/kfp-semantics.md §3.1).
type ExecutorInput struct {
	Inputs  ExecInputs  `json:"inputs"`
	Outputs ExecOutputs `json:"outputs"`
}

// ExecInputs are the resolved inputs of a task.
type ExecInputs struct {
	ParameterValues map[string]any          `json:"parameterValues,omitempty"`
	Artifacts       map[string]ArtifactList `json:"artifacts,omitempty"`
}

// ExecOutputs are where a task writes its outputs.
type ExecOutputs struct {
	Parameters map[string]OutputParameter `json:"parameters,omitempty"`
	Artifacts  map[string]ArtifactList    `json:"artifacts,omitempty"`
	OutputFile string                     `json:"outputFile"`
	// local is OutputFile on the host (it differs in a container).
	local string
}

// OutputParameter is the file an output parameter is written to.
type OutputParameter struct {
	OutputFile string `json:"outputFile"`
}

// ArtifactList wraps a list of artifacts, as the IR does.
type ArtifactList struct {
	Artifacts []*RuntimeArtifact `json:"artifacts"`
}

// RuntimeArtifact is one artifact as components see it.
type RuntimeArtifact struct {
	Name       string         `json:"name"`
	Type       ArtifactType   `json:"type"`
	URI        string         `json:"uri"`
	Metadata   map[string]any `json:"metadata"`
	CustomPath string         `json:"customPath,omitempty"`
	// Not part of the IR: what mlpipe knows about the stored object.
	Digest string `json:"-"`
	Size   int64  `json:"-"`
	Dir    bool   `json:"-"`
	// local is where the executor reads or writes it on the host.
	local string
}

// ArtifactType is the type of a runtime artifact.
type ArtifactType struct {
	SchemaTitle   string `json:"schemaTitle"`
	SchemaVersion string `json:"schemaVersion,omitempty"`
}

// JobInfo is what the job and task placeholders resolve to.
type JobInfo struct {
	JobName      string // {{$.pipeline_job_name}}
	ResourceName string // {{$.pipeline_job_resource_name}}
	JobUUID      string // {{$.pipeline_job_uuid}}
	TaskName     string // {{$.pipeline_task_name}}
	TaskUUID     string // {{$.pipeline_task_uuid}}
	PipelineRoot string // {{$.pipeline_root}}
	CreateTime   string // {{$.pipeline_job_create_time_utc}}
	Workspace    string // {{$.workspace_path}}
}

// placeholderContext resolves placeholders for one attempt.
type placeholderContext struct {
	in      *ExecutorInput
	job     JobInfo
	present map[string]bool // inputs present before defaults (IfPresent)
	// path maps an artifact to the path the program sees.
	path func(a *RuntimeArtifact) string
	json []byte
}

// FormatValue renders a parameter value as the backend does in command
// lines (docs/kfp-semantics.md §2.2): strings raw, integral numbers without fraction,
// other numbers in shortest form, lists and structs as compact JSON.
func FormatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e18 {
			return strconv.FormatInt(int64(x), 10)
		}
		if a := math.Abs(x); a >= 1e-6 && a < 1e21 {
			return strconv.FormatFloat(x, 'f', -1, 64)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case json.Number:
		return x.String()
	}
	return compactJSON(v)
}

func compactJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// resolveArgs turns command/args templates into argv elements (§2.4):
// structural placeholders are expanded, then every {{$...}} is replaced in
// one left-to-right pass.
func (pc *placeholderContext) resolveArgs(templates []string) ([]string, error) {
	var out []string
	for _, t := range templates {
		els, err := pc.expandStructural(t)
		if err != nil {
			return nil, err
		}
		for _, e := range els {
			s, err := pc.substitute(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// expandStructural expands an element that is a JSON object with one key,
// Concat or IfPresent, into zero or more elements.
func (pc *placeholderContext) expandStructural(t string) ([]string, error) {
	trimmed := strings.TrimSpace(t)
	if !strings.HasPrefix(trimmed, "{") || !strings.HasSuffix(trimmed, "}") ||
		!(strings.Contains(trimmed, `"Concat"`) || strings.Contains(trimmed, `"IfPresent"`)) {
		return []string{t}, nil
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(trimmed), &obj); err != nil || len(obj) != 1 {
		return []string{t}, nil
	}
	return pc.expandNode(obj, 0)
}

func (pc *placeholderContext) expandNode(n any, depth int) ([]string, error) {
	if depth > 32 {
		return nil, fmt.Errorf("structural placeholders nested too deeply")
	}
	switch x := n.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{x}, nil
	case []any:
		var out []string
		for _, e := range x {
			r, err := pc.expandNode(e, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, r...)
		}
		return out, nil
	case map[string]any:
		if c, ok := x["Concat"]; ok && len(x) == 1 {
			items, ok := c.([]any)
			if !ok {
				return nil, fmt.Errorf("Concat needs a list")
			}
			var sb strings.Builder
			for _, it := range items {
				r, err := pc.expandNode(it, depth+1)
				if err != nil {
					return nil, err
				}
				if len(r) > 1 {
					return nil, fmt.Errorf("a Concat item expanded to %d elements; branches inside Concat must be single", len(r))
				}
				for _, s := range r {
					sb.WriteString(s)
				}
			}
			return []string{sb.String()}, nil
		}
		if ip, ok := x["IfPresent"]; ok && len(x) == 1 {
			m, ok := ip.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("IfPresent needs an object")
			}
			name, _ := m["InputName"].(string)
			if name == "" {
				return nil, fmt.Errorf("IfPresent without InputName")
			}
			if pc.present[name] {
				return pc.expandNode(m["Then"], depth+1)
			}
			return pc.expandNode(m["Else"], depth+1)
		}
		return []string{compactJSON(x)}, nil
	}
	return []string{FormatValue(n)}, nil
}

// substitute replaces every {{$...}} placeholder of s in a single pass, so
// that substituted text is never scanned again.
func (pc *placeholderContext) substitute(s string) (string, error) {
	if !strings.Contains(s, "{{$") {
		return s, nil
	}
	var b strings.Builder
	rest := s
	for {
		i := strings.Index(rest, "{{$")
		if i < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			b.WriteString(rest[i:])
			break
		}
		expr := rest[i+3 : i+j]
		v, err := pc.lookup(expr)
		if err != nil {
			return "", err
		}
		b.WriteString(v)
		rest = rest[i+j+2:]
	}
	return b.String(), nil
}

// lookup resolves the inside of {{$ ... }} ("" for {{$}}, ".inputs...").
func (pc *placeholderContext) lookup(expr string) (string, error) {
	if expr == "" {
		return string(pc.json), nil
	}
	switch expr {
	case ".pipeline_job_name":
		return pc.job.JobName, nil
	case ".pipeline_job_resource_name":
		return pc.job.ResourceName, nil
	case ".pipeline_job_uuid":
		return pc.job.JobUUID, nil
	case ".pipeline_task_name":
		return pc.job.TaskName, nil
	case ".pipeline_task_uuid":
		return pc.job.TaskUUID, nil
	case ".pipeline_root":
		return pc.job.PipelineRoot, nil
	case ".pipeline_job_create_time_utc", ".pipeline_job_schedule_time_utc":
		return pc.job.CreateTime, nil
	case ".workspace_path":
		return pc.job.Workspace, nil
	case ".outputs.output_file", ".outputMetadataUri":
		return pc.in.Outputs.OutputFile, nil
	}
	sel, err := parseSelector(expr)
	if err != nil {
		return "", err
	}
	switch sel.section {
	case "inputs.parameters":
		v, ok := pc.in.Inputs.ParameterValues[sel.key]
		if !ok {
			return "", fmt.Errorf("input %q referenced in {{$%s}} but not provided", sel.key, expr)
		}
		if sel.field != "" {
			return "", fmt.Errorf("unsupported placeholder {{$%s}}", expr)
		}
		return FormatValue(v), nil
	case "outputs.parameters":
		op, ok := pc.in.Outputs.Parameters[sel.key]
		if !ok {
			return "", fmt.Errorf("output parameter %q referenced in {{$%s}} is not declared", sel.key, expr)
		}
		if sel.field != "output_file" {
			return "", fmt.Errorf("unsupported placeholder {{$%s}}", expr)
		}
		return op.OutputFile, nil
	case "inputs.artifacts", "outputs.artifacts":
		var list ArtifactList
		var ok bool
		if sel.section == "inputs.artifacts" {
			list, ok = pc.in.Inputs.Artifacts[sel.key]
		} else {
			list, ok = pc.in.Outputs.Artifacts[sel.key]
		}
		if !ok || len(list.Artifacts) == 0 {
			return "", fmt.Errorf("artifact %q referenced in {{$%s}} but not provided", sel.key, expr)
		}
		if sel.field == "" {
			return compactJSON(list.Artifacts), nil
		}
		a := list.Artifacts[0]
		switch sel.field {
		case "path":
			return pc.path(a), nil
		case "uri":
			return a.URI, nil
		case "metadata":
			if sel.metaKey == "" {
				md := a.Metadata
				if md == nil {
					md = map[string]any{}
				}
				return compactJSON(md), nil
			}
			v, ok := a.Metadata[sel.metaKey]
			if !ok {
				return "", fmt.Errorf("artifact %q has no metadata %q", sel.key, sel.metaKey)
			}
			return FormatValue(v), nil
		}
	}
	return "", fmt.Errorf("unsupported placeholder {{$%s}}", expr)
}

type selector struct {
	section string // inputs.parameters, outputs.artifacts, ...
	key     string
	field   string // path, uri, metadata, output_file
	metaKey string
}

// parseSelector parses ".inputs.artifacts['N'].metadata['K']" and friends.
func parseSelector(expr string) (selector, error) {
	var s selector
	bad := fmt.Errorf("unsupported placeholder {{$%s}}", expr)
	for _, sec := range []string{".inputs.parameters", ".inputs.artifacts", ".outputs.parameters", ".outputs.artifacts"} {
		if strings.HasPrefix(expr, sec+"[") {
			s.section = sec[1:]
			rest := expr[len(sec):]
			key, rest, ok := bracketKey(rest)
			if !ok {
				return s, bad
			}
			s.key = key
			if rest == "" {
				return s, nil
			}
			if !strings.HasPrefix(rest, ".") {
				return s, bad
			}
			rest = rest[1:]
			if i := strings.IndexByte(rest, '['); i >= 0 {
				s.field = rest[:i]
				mk, tail, ok := bracketKey(rest[i:])
				if !ok || tail != "" || s.field != "metadata" {
					return s, bad
				}
				s.metaKey = mk
				return s, nil
			}
			s.field = rest
			switch s.field {
			case "path", "uri", "metadata", "output_file":
				return s, nil
			}
			return s, bad
		}
	}
	return s, bad
}

// bracketKey reads ['key'] or ["key"] from the start of s.
func bracketKey(s string) (string, string, bool) {
	if len(s) < 4 || s[0] != '[' {
		return "", "", false
	}
	q := s[1]
	if q != '\'' && q != '"' {
		return "", "", false
	}
	end := strings.IndexByte(s[2:], q)
	if end < 0 || len(s) < end+4 || s[2+end+1] != ']' {
		return "", "", false
	}
	return s[2 : 2+end], s[2+end+2:], true
}

// resolveSelfReferences resolves placeholders inside string input values
// (f-strings compile to them) before {{$}} is serialised (§2.4 step 1).
func (pc *placeholderContext) resolveSelfReferences() error {
	for k, v := range pc.in.Inputs.ParameterValues {
		s, ok := v.(string)
		if !ok || !strings.Contains(s, "{{$") {
			continue
		}
		r, err := pc.substitute(s)
		if err != nil {
			return fmt.Errorf("input %s: %w", k, err)
		}
		pc.in.Inputs.ParameterValues[k] = r
	}
	return nil
}
