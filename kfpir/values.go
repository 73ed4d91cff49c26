package kfpir

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
)

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

// JSONCompatible converts int64 (which structpb rejects inside lists and
// maps) to float64, recursively.
func JSONCompatible(v any) any {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case int:
		return float64(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = JSONCompatible(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = JSONCompatible(e)
		}
		return out
	}
	return v
}

// CELMessage is the first line of a CEL issue, without cel-go's "<input>"
// prefix: what a user needs to see of it.
func CELMessage(s string) string {
	s = strings.TrimPrefix(s, "ERROR: <input>:")
	lines := strings.Split(s, "\n")
	return strings.TrimSpace(lines[0])
}
