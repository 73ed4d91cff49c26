package kfpir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/mlpipe/mlpipe/internal/diag"
	"github.com/mlpipe/mlpipe/internal/yamlnode"
)

// IR is a loaded KFP pipeline: the PipelineSpec parsed with the pinned proto,
// its executors decoded, and the fields newer than the pinned proto read from
// the raw document so that nothing the runner needs is dropped
// (docs/kfp-semantics.md §6).
type IR struct {
	File      string
	Spec      *pb.PipelineSpec
	Executors map[string]*Executor
	// Platform is the raw PlatformSpec document (platforms: ...), if any.
	Platform map[string]any
	// CacheKeys holds cachingOptions.cacheKey by "<component>/<task>"
	// ("root" for the root DAG).
	CacheKeys map[string]string
	// Literals holds inputDefinitions.parameters.X.literals by
	// "<component>/<input>".
	Literals map[string][]any
	// TaskConfig marks TASK_CONFIG inputs by "<component>/<input>"; they are
	// typed STRUCT in Spec.
	TaskConfig map[string]bool
	// Raw is the PipelineSpec document as plain JSON-like values.
	Raw map[string]any
	// src is the file's text, kept to give diagnostics their lines.
	src []byte
}

// SchemaVersion is the only IR schema version KFP API servers accept.
const SchemaVersion = "2.1.0"

// EnvVar is one environment variable of a container.
type EnvVar struct {
	Name, Value string
}

// Executor is one entry of deploymentSpec.executors, decoded from the raw
// document with the old and new field names merged.
type Executor struct {
	Container *Container `json:"container,omitempty"`
	Importer  *Importer  `json:"importer,omitempty"`
}

// Container is a container executor.
type Container struct {
	Image     string    `json:"image"`
	Command   []string  `json:"command,omitempty"`
	Args      []string  `json:"args,omitempty"`
	Env       []EnvVar  `json:"env,omitempty"`
	Resources Resources `json:"resources"`
}

// Resources of a container. Values are Kubernetes quantities ("2", "500m",
// "4Gi", "1.5G") or placeholders resolved at run time; the new string fields
// win over the old numeric ones (docs/kfp-semantics.md §6.2).
type Resources struct {
	CPULimit         string `json:"cpuLimit,omitempty"`
	CPURequest       string `json:"cpuRequest,omitempty"`
	MemoryLimit      string `json:"memoryLimit,omitempty"`
	MemoryRequest    string `json:"memoryRequest,omitempty"`
	AcceleratorType  string `json:"acceleratorType,omitempty"`
	AcceleratorCount string `json:"acceleratorCount,omitempty"`
}

// Importer is an importer executor.
type Importer struct {
	URIConstant         string         `json:"uriConstant,omitempty"`
	URIParameter        string         `json:"uriParameter,omitempty"`
	TypeSchema          string         `json:"typeSchema"`
	SchemaVersion       string         `json:"schemaVersion,omitempty"`
	Metadata            map[string]any `json:"metadata,omitempty"`
	Reimport            bool           `json:"reimport,omitempty"`
	DownloadToWorkspace bool           `json:"downloadToWorkspace,omitempty"`
}

// LoadIR reads a KFP IR file: YAML (one PipelineSpec document, optionally
// followed by a PlatformSpec document) or JSON, also a PipelineJob wrapper.
func LoadIR(file string) (*IR, error) {
	src, err := ReadSource(file)
	if err != nil {
		return nil, err
	}
	return LoadIRBytes(file, src)
}

// LoadIRBytes is LoadIR on bytes already read.
func LoadIRBytes(file string, src []byte) (*IR, error) {
	docs, err := rawDocs(file, src)
	if err != nil {
		return nil, err
	}
	ir, err := loadDocs(file, docs, nil)
	if ds, ok := err.(diag.Diagnostics); ok {
		return nil, withLines(src, ds)
	}
	if err != nil {
		return nil, err
	}
	ir.src = src
	return ir, nil
}

// loadDocs builds the IR from decoded documents. spec, when given, is the
// PipelineSpec the documents encode (FromSpec), which saves decoding it.
func loadDocs(file string, docs []any, spec *pb.PipelineSpec) (*IR, error) {
	ir := &IR{File: file, CacheKeys: map[string]string{}, Literals: map[string][]any{}, TaskConfig: map[string]bool{}}
	for _, doc := range docs {
		m, ok := doc.(map[string]any)
		if !ok {
			continue
		}
		if ps, ok := m["pipelineSpec"].(map[string]any); ok && ir.Raw == nil {
			m = ps // PipelineJob wrapper
		} else if ps, ok := m["pipeline_spec"].(map[string]any); ok && ir.Raw == nil {
			m = ps
		}
		if _, ok := m["platforms"]; ok && ir.Platform == nil {
			ir.Platform = m
			continue
		}
		if _, ok := m["root"]; ok && ir.Raw == nil {
			ir.Raw = m
		}
	}
	if ir.Raw == nil {
		return nil, diag.Diagnostics{{File: file, Msg: "no PipelineSpec document (a mapping with root and pipelineInfo) in the file"}}
	}
	// The proto parse works on a copy: TASK_CONFIG is rewritten for the
	// pinned proto, while Raw stays what the file says (submit sends it).
	// (A spec from the compiler holds nothing readExtensions rewrites.)
	work := ir.Raw
	if spec == nil {
		work = CopyDoc(ir.Raw)
	}
	ir.readExtensions(work)
	if spec == nil {
		b, err := json.Marshal(work)
		if err != nil {
			return nil, diag.Diagnostics{{File: file, Msg: "cannot encode document: " + err.Error()}}
		}
		spec = &pb.PipelineSpec{}
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, spec); err != nil {
			return nil, diag.Diagnostics{{File: file, Msg: "not a valid PipelineSpec: " + cleanProtoErr(err)}}
		}
	}
	ir.Spec = spec
	ir.Executors = map[string]*Executor{}
	var d diag.List
	d.File = file
	if dep, ok := ir.Raw["deploymentSpec"].(map[string]any); ok {
		execs, _ := dep["executors"].(map[string]any)
		for label, raw := range execs {
			e, err := decodeExecutor(raw)
			if err != nil {
				d.Path("deploymentSpec.executors."+label, "%v", err)
				continue
			}
			ir.Executors[label] = e
		}
	}
	checkNames(&d, ir)
	if err := d.Err(); err != nil {
		return nil, err
	}
	return ir, nil
}

func cleanProtoErr(err error) string {
	// protojson errors start with "proto: " and may contain non-breaking
	// spaces (detrand); keep them readable.
	s := strings.ReplaceAll(err.Error(), "\u00a0", " ")
	return strings.TrimPrefix(s, "proto: ")
}

// rawDocs decodes every document of a YAML stream or a JSON file into plain
// values (maps, lists, strings, float64/int64, bools).
func rawDocs(file string, src []byte) ([]any, error) {
	trimmed := bytes.TrimSpace(src)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err == nil {
			return []any{NormalizeNumbers(v)}, nil
		}
		// Not JSON: a YAML flow mapping, or an error the YAML parser
		// reports with a position.
	}
	nodes, err := yamlnode.ParseAll(src)
	if err != nil {
		return nil, diag.YAMLError(file, err)
	}
	out := make([]any, 0, len(nodes))
	for _, n := range nodes {
		if n.Kind == yamlnode.Null {
			continue
		}
		out = append(out, n.Value())
	}
	return out, nil
}

// NormalizeNumbers turns the json.Numbers of a decoded JSON value into the
// int64 and float64 values the YAML loader gives, in place.
func NormalizeNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = NormalizeNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = NormalizeNumbers(e)
		}
	}
	return v
}

// readExtensions records the fields newer than the pinned proto and rewrites
// what the old proto cannot parse (the TASK_CONFIG enum value).
func (ir *IR) readExtensions(raw map[string]any) {
	visitComp := func(name string, comp map[string]any) {
		if inDefs, ok := mapAt(comp, "inputDefinitions", "parameters"); ok {
			for in, rawP := range inDefs {
				p, ok := rawP.(map[string]any)
				if !ok {
					continue
				}
				if t, _ := p["parameterType"].(string); t == "TASK_CONFIG" {
					p["parameterType"] = "STRUCT"
					ir.TaskConfig[name+"/"+in] = true
				}
				if lits, ok := p["literals"].([]any); ok {
					ir.Literals[name+"/"+in] = lits
				}
			}
		}
		if tasks, ok := mapAt(comp, "dag", "tasks"); ok {
			for tn, rawT := range tasks {
				t, ok := rawT.(map[string]any)
				if !ok {
					continue
				}
				co, _ := t["cachingOptions"].(map[string]any)
				if k, ok := co["cacheKey"].(string); ok && k != "" {
					ir.CacheKeys[name+"/"+tn] = k
				}
			}
		}
	}
	if root, ok := raw["root"].(map[string]any); ok {
		visitComp("root", root)
	}
	if comps, ok := raw["components"].(map[string]any); ok {
		for n, c := range comps {
			if cm, ok := c.(map[string]any); ok {
				visitComp(n, cm)
			}
		}
	}
}

func mapAt(m map[string]any, keys ...string) (map[string]any, bool) {
	cur := m
	for _, k := range keys {
		next, ok := cur[k].(map[string]any)
		if !ok {
			return nil, false
		}
		cur = next
	}
	return cur, true
}

func decodeExecutor(raw any) (*Executor, error) {
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("executor must be a mapping")
	}
	e := &Executor{}
	switch {
	case m["container"] != nil:
		c, ok := m["container"].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("container must be a mapping")
		}
		ct := &Container{}
		var err error
		if ct.Image, err = rawString(c["image"], "image"); err != nil {
			return nil, err
		}
		if ct.Command, err = rawStrings(c["command"], "command"); err != nil {
			return nil, err
		}
		if ct.Args, err = rawStrings(c["args"], "args"); err != nil {
			return nil, err
		}
		if envs, ok := c["env"].([]any); ok {
			for i, ev := range envs {
				em, _ := ev.(map[string]any)
				name, err1 := rawString(em["name"], fmt.Sprintf("env[%d].name", i))
				val, err2 := rawString(em["value"], fmt.Sprintf("env[%d].value", i))
				if err1 != nil || err2 != nil || name == "" {
					return nil, fmt.Errorf("env[%d] must be {name, value}", i)
				}
				ct.Env = append(ct.Env, EnvVar{Name: name, Value: val})
			}
		} else if c["env"] != nil {
			return nil, fmt.Errorf("env must be a list of {name, value}")
		}
		if r, ok := c["resources"].(map[string]any); ok {
			ct.Resources = decodeResources(r)
		}
		e.Container = ct
	case m["importer"] != nil:
		im, ok := m["importer"].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("importer must be a mapping")
		}
		imp := &Importer{}
		au, _ := im["artifactUri"].(map[string]any)
		if au == nil {
			au, _ = im["artifact_uri"].(map[string]any)
		}
		if s, ok := au["constant"].(string); ok {
			imp.URIConstant = s
		} else if cv, ok := au["constantValue"].(map[string]any); ok {
			imp.URIConstant, _ = cv["stringValue"].(string)
		}
		if s, ok := au["runtimeParameter"].(string); ok {
			imp.URIParameter = s
		}
		if imp.URIConstant == "" && imp.URIParameter == "" {
			return nil, fmt.Errorf("importer has no artifactUri (constant or runtimeParameter)")
		}
		ts, _ := im["typeSchema"].(map[string]any)
		imp.TypeSchema = "system.Artifact"
		if t, ok := ts["schemaTitle"].(string); ok && t != "" {
			imp.TypeSchema = t
		} else if is, ok := ts["instanceSchema"].(string); ok {
			imp.TypeSchema = SchemaTitle(&pb.ArtifactTypeSchema{Kind: &pb.ArtifactTypeSchema_InstanceSchema{InstanceSchema: is}})
		}
		imp.SchemaVersion, _ = ts["schemaVersion"].(string)
		imp.Metadata, _ = im["metadata"].(map[string]any)
		imp.Reimport, _ = im["reimport"].(bool)
		imp.DownloadToWorkspace, _ = im["downloadToWorkspace"].(bool)
		e.Importer = imp
	case m["resolver"] != nil:
		return nil, fmt.Errorf("resolver executors are not supported (the KFP backend does not implement them either)")
	case m["customJob"] != nil:
		return nil, fmt.Errorf("customJob executors are Vertex AI only and not supported")
	default:
		return nil, fmt.Errorf("executor has no container or importer")
	}
	return e, nil
}

func decodeResources(r map[string]any) Resources {
	var out Resources
	pick := func(newKey, oldKey, unit string) string {
		if s, ok := r[newKey].(string); ok && s != "" {
			return s
		}
		if f, ok := number(r[oldKey]); ok && f != 0 {
			return strconv.FormatFloat(f, 'f', -1, 64) + unit
		}
		return ""
	}
	out.CPULimit = pick("resourceCpuLimit", "cpuLimit", "")
	out.CPURequest = pick("resourceCpuRequest", "cpuRequest", "")
	out.MemoryLimit = pick("resourceMemoryLimit", "memoryLimit", "G")
	out.MemoryRequest = pick("resourceMemoryRequest", "memoryRequest", "G")
	if acc, ok := r["accelerator"].(map[string]any); ok {
		if s, ok := acc["resourceType"].(string); ok && s != "" {
			out.AcceleratorType = s
		} else if s, ok := acc["type"].(string); ok {
			out.AcceleratorType = s
		}
		if s, ok := acc["resourceCount"].(string); ok && s != "" {
			out.AcceleratorCount = s
		} else if f, ok := number(acc["count"]); ok && f > 0 {
			out.AcceleratorCount = strconv.FormatFloat(f, 'f', -1, 64)
		} else if s, ok := acc["count"].(string); ok && s != "" && s != "0" {
			out.AcceleratorCount = s
		}
	}
	return out
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

func rawString(v any, what string) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case int64, float64, bool:
		return fmt.Sprint(x), nil
	}
	return "", fmt.Errorf("%s must be a string", what)
}

func rawStrings(v any, what string) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s must be a list of strings", what)
	}
	out := make([]string, len(l))
	for i, e := range l {
		s, err := rawString(e, fmt.Sprintf("%s[%d]", what, i))
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// Component returns the component spec named name ("root" for the root).
func (ir *IR) Component(name string) *pb.ComponentSpec {
	if name == "root" {
		return ir.Spec.GetRoot()
	}
	return ir.Spec.GetComponents()[name]
}

// FromSpec wraps a compiled PipelineSpec as an IR, as if it had been
// written and loaded again.
func FromSpec(file string, spec *pb.PipelineSpec) (*IR, error) {
	m, err := ToMap(spec)
	if err != nil {
		return nil, err
	}
	return loadDocs(file, []any{m}, proto.Clone(spec).(*pb.PipelineSpec))
}

// CopyDoc deep-copies a JSON-like document (maps, lists, scalars) so that it
// can be rewritten without touching the original.
func CopyDoc(m map[string]any) map[string]any { return deepCopy(m).(map[string]any) }

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}
