package compiler

import (
	"strings"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/mlpipe/mlpipe/kfpir"
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
	return kfpir.ParamTypeName(t.Param)
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
