package compiler

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
)

// Type is the type of a component input or output: a parameter type, or an
// artifact type (schema title), possibly a list of artifacts.
type Type struct {
	Param         pb.ParameterType_ParameterTypeEnum // set for parameters
	Artifact      string                             // schema title for artifacts, e.g. system.Model
	SchemaVersion string
	List          bool // artifact list (isArtifactList)
}

// IsArtifact reports whether t is an artifact type.
func (t Type) IsArtifact() bool { return t.Artifact != "" }

func (t Type) String() string {
	if t.IsArtifact() {
		if t.List {
			return "List[" + t.Artifact + "]"
		}
		return t.Artifact
	}
	return ParamTypeName(t.Param)
}

// ParamTypeName is the pipeline-format name of a parameter type.
func ParamTypeName(p pb.ParameterType_ParameterTypeEnum) string {
	switch p {
	case pb.ParameterType_STRING:
		return "String"
	case pb.ParameterType_NUMBER_INTEGER:
		return "Integer"
	case pb.ParameterType_NUMBER_DOUBLE:
		return "Float"
	case pb.ParameterType_BOOLEAN:
		return "Boolean"
	case pb.ParameterType_LIST:
		return "List"
	case pb.ParameterType_STRUCT:
		return "Struct"
	case pb.ParameterType_TASK_FINAL_STATUS:
		return "PipelineTaskFinalStatus"
	}
	return "unspecified"
}

var paramTypeNames = map[string]pb.ParameterType_ParameterTypeEnum{
	"string": pb.ParameterType_STRING, "str": pb.ParameterType_STRING, "text": pb.ParameterType_STRING,
	"integer": pb.ParameterType_NUMBER_INTEGER, "int": pb.ParameterType_NUMBER_INTEGER,
	"float": pb.ParameterType_NUMBER_DOUBLE, "double": pb.ParameterType_NUMBER_DOUBLE, "number": pb.ParameterType_NUMBER_DOUBLE,
	"boolean": pb.ParameterType_BOOLEAN, "bool": pb.ParameterType_BOOLEAN,
	"list": pb.ParameterType_LIST, "jsonarray": pb.ParameterType_LIST, "array": pb.ParameterType_LIST,
	"struct": pb.ParameterType_STRUCT, "dict": pb.ParameterType_STRUCT, "jsonobject": pb.ParameterType_STRUCT, "map": pb.ParameterType_STRUCT,
	"pipelinetaskfinalstatus": pb.ParameterType_TASK_FINAL_STATUS,
}

var artifactTypeNames = map[string]string{
	"artifact": "system.Artifact", "dataset": "system.Dataset", "model": "system.Model",
	"metrics": "system.Metrics", "classificationmetrics": "system.ClassificationMetrics",
	"slicedclassificationmetrics": "system.SlicedClassificationMetrics",
	"html":                        "system.HTML", "markdown": "system.Markdown",
}

// ParseTypeName maps a KFP component type name ("String", "Integer", "List",
// "Dataset", "system.Model@0.0.1", "List[Model]", ...) to a Type. Unknown
// names become the generic system.Artifact, as the KFP SDK does; known is
// false for them.
func ParseTypeName(name string) (t Type, known bool) {
	n := strings.TrimSpace(name)
	lower := strings.ToLower(n)
	// typing-style generics: List[int], Dict[str, int], typing.List[...]
	lower = strings.TrimPrefix(lower, "typing.")
	if i := strings.IndexByte(lower, '['); i > 0 && strings.HasSuffix(lower, "]") {
		base, arg := lower[:i], n[i+1:len(n)-1]
		switch base {
		case "list":
			if at, ok := artifactTitle(arg); ok {
				return Type{Artifact: at, SchemaVersion: "0.0.1", List: true}, true
			}
			return Type{Param: pb.ParameterType_LIST}, true
		case "dict":
			return Type{Param: pb.ParameterType_STRUCT}, true
		case "optional":
			return ParseTypeName(arg)
		}
	}
	if p, ok := paramTypeNames[lower]; ok {
		return Type{Param: p}, true
	}
	if at, ok := artifactTitle(n); ok {
		return Type{Artifact: at, SchemaVersion: "0.0.1"}, true
	}
	return Type{Artifact: "system.Artifact", SchemaVersion: "0.0.1"}, false
}

func artifactTitle(name string) (string, bool) {
	n := strings.TrimSpace(name)
	if i := strings.IndexByte(n, '@'); i > 0 {
		n = n[:i]
	}
	if t, ok := artifactTypeNames[strings.ToLower(n)]; ok {
		return t, true
	}
	if strings.HasPrefix(n, "system.") || strings.HasPrefix(n, "google.") {
		return n, true
	}
	return "", false
}

// artifactSchema builds the IR artifact type for t.
func artifactSchema(t Type) *pb.ArtifactTypeSchema {
	v := t.SchemaVersion
	if v == "" {
		v = "0.0.1"
	}
	return &pb.ArtifactTypeSchema{Kind: &pb.ArtifactTypeSchema_SchemaTitle{SchemaTitle: t.Artifact}, SchemaVersion: v}
}

// SchemaTitle returns the schema title of an IR artifact type, reading the
// instanceSchema form too; unknown titles are system.Artifact.
func SchemaTitle(s *pb.ArtifactTypeSchema) string {
	if s == nil {
		return "system.Artifact"
	}
	switch k := s.Kind.(type) {
	case *pb.ArtifactTypeSchema_SchemaTitle:
		if k.SchemaTitle != "" {
			return k.SchemaTitle
		}
	case *pb.ArtifactTypeSchema_InstanceSchema:
		for _, line := range strings.Split(k.InstanceSchema, "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "title:"); ok {
				return strings.TrimSpace(rest)
			}
		}
	}
	return "system.Artifact"
}

// artifactCompatible reports whether an artifact of type from may feed an
// input of type to (system.Artifact is compatible with everything).
func artifactCompatible(from, to string) bool {
	return from == to || from == "system.Artifact" || to == "system.Artifact"
}

// paramCompatible reports whether a parameter value of type from may feed
// an input of type to. STRING inputs accept anything (the backend converts
// values to text); integers feed floats.
func paramCompatible(from, to pb.ParameterType_ParameterTypeEnum) bool {
	if from == to || to == pb.ParameterType_STRING {
		return true
	}
	if from == pb.ParameterType_NUMBER_INTEGER && to == pb.ParameterType_NUMBER_DOUBLE {
		return true
	}
	if to == pb.ParameterType_TASK_FINAL_STATUS || from == pb.ParameterType_TASK_FINAL_STATUS {
		return from == pb.ParameterType_STRUCT || to == pb.ParameterType_STRUCT
	}
	return false
}

// CheckValue checks that a JSON-like Go value (as produced by
// encoding/json or yamlnode: string, int64, float64, bool, []any,
// map[string]any, nil) fits parameter type p and returns it normalised
// (integers as int64 where p is NUMBER_INTEGER, float64 otherwise).
func CheckValue(p pb.ParameterType_ParameterTypeEnum, v any) (any, error) {
	switch p {
	case pb.ParameterType_STRING:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case pb.ParameterType_NUMBER_INTEGER:
		switch n := v.(type) {
		case int64:
			return n, nil
		case int:
			return int64(n), nil
		case float64:
			if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
				return int64(n), nil
			}
			return nil, fmt.Errorf("%v is not an integer", n)
		case json.Number:
			if i, err := n.Int64(); err == nil {
				return i, nil
			}
			return nil, fmt.Errorf("%s is not an integer", n)
		}
	case pb.ParameterType_NUMBER_DOUBLE:
		switch n := v.(type) {
		case int64:
			return float64(n), nil
		case int:
			return float64(n), nil
		case float64:
			return n, nil
		case json.Number:
			if f, err := n.Float64(); err == nil {
				return f, nil
			}
		}
	case pb.ParameterType_BOOLEAN:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case pb.ParameterType_LIST:
		if l, ok := v.([]any); ok {
			return l, nil
		}
	case pb.ParameterType_STRUCT, pb.ParameterType_TASK_FINAL_STATUS:
		if m, ok := v.(map[string]any); ok {
			return m, nil
		}
	default:
		return nil, fmt.Errorf("unsupported parameter type %s", p)
	}
	return nil, fmt.Errorf("%s is not %s", describeValue(v), withArticle(ParamTypeName(p)))
}

func describeValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return strconv.Quote(x)
	case bool:
		return "boolean " + strconv.FormatBool(x)
	case int64, int, float64, json.Number:
		return fmt.Sprintf("number %v", x)
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

// ParseParamValue parses a command-line parameter value (-p NAME=VALUE) by
// the parameter's declared type: numbers, true/false, JSON for List and
// Struct, strings as given.
func ParseParamValue(p pb.ParameterType_ParameterTypeEnum, s string) (any, error) {
	switch p {
	case pb.ParameterType_STRING:
		return s, nil
	case pb.ParameterType_NUMBER_INTEGER:
		i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not an integer", s)
		}
		return i, nil
	case pb.ParameterType_NUMBER_DOUBLE:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("%q is not a number", s)
		}
		return f, nil
	case pb.ParameterType_BOOLEAN:
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, fmt.Errorf("%q is not true or false", s)
	case pb.ParameterType_LIST, pb.ParameterType_STRUCT:
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, fmt.Errorf("%q is not valid JSON: %v", s, err)
		}
		return CheckValue(p, v)
	}
	return nil, fmt.Errorf("parameters of type %s cannot be set", ParamTypeName(p))
}

func withArticle(s string) string {
	if s != "" && strings.ContainsRune("AEIOU", rune(s[0])) {
		return "an " + s
	}
	return "a " + s
}
