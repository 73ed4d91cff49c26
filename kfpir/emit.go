package kfpir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Format is an output format for IR.
type Format string

// Output formats.
const (
	YAML Format = "yaml"
	JSON Format = "json"
)

// ToMap converts a proto message to plain JSON values (proto3 JSON names).
// protojson's bytes are deliberately unstable, so everything mlpipe writes
// goes through this normalisation first.
func ToMap(m proto.Message) (map[string]any, error) {
	if m == nil {
		return map[string]any{}, nil
	}
	return protoMap(m.ProtoReflect()), nil
}

// toMapViaJSON is ToMap through protojson, the reference for tests.
func toMapViaJSON(m proto.Message) (map[string]any, error) {
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Marshal writes a PipelineSpec as YAML (with the SDK's comment header) or
// indented JSON. Keys are sorted, so the bytes are deterministic.
func Marshal(spec *pb.PipelineSpec, f Format) ([]byte, error) {
	m, err := ToMap(spec)
	if err != nil {
		return nil, fmt.Errorf("encode IR: %w", err)
	}
	switch f {
	case JSON:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(m); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case YAML, "":
		var buf bytes.Buffer
		buf.WriteString(header(spec))
		writeYAML(&buf, m)
		return buf.Bytes(), nil
	}
	return nil, fmt.Errorf("unknown format %q (want yaml or json)", f)
}

// header is the comment block the KFP SDK writes on top of compiled IR.
func header(spec *pb.PipelineSpec) string {
	var b strings.Builder
	b.WriteString("# PIPELINE DEFINITION\n")
	fmt.Fprintf(&b, "# Name: %s\n", oneLineComment(spec.GetPipelineInfo().GetName()))
	if d := spec.GetPipelineInfo().GetDescription(); d != "" {
		fmt.Fprintf(&b, "# Description: %s\n", oneLineComment(d))
	}
	root := spec.GetRoot()
	if ps := root.GetInputDefinitions().GetParameters(); len(ps) > 0 {
		b.WriteString("# Inputs:\n")
		names := make([]string, 0, len(ps))
		for n := range ps {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			p := ps[n]
			fmt.Fprintf(&b, "#    %s: %s", n, strings.ToLower(ParamTypeName(p.ParameterType)))
			if p.DefaultValue != nil {
				v, _ := json.Marshal(p.DefaultValue.AsInterface())
				fmt.Fprintf(&b, " [Default: %s]", oneLineComment(string(v)))
			}
			b.WriteString("\n")
		}
	}
	outs := root.GetOutputDefinitions()
	if len(outs.GetParameters())+len(outs.GetArtifacts()) > 0 {
		b.WriteString("# Outputs:\n")
		var lines []string
		for n, p := range outs.GetParameters() {
			lines = append(lines, fmt.Sprintf("#    %s: %s", n, strings.ToLower(ParamTypeName(p.ParameterType))))
		}
		for n, a := range outs.GetArtifacts() {
			lines = append(lines, fmt.Sprintf("#    %s: %s", n, SchemaTitle(a.GetArtifactType())))
		}
		sort.Strings(lines)
		b.WriteString(strings.Join(lines, "\n") + "\n")
	}
	return b.String()
}

func oneLineComment(s string) string {
	s = strings.ReplaceAll(s, "\r", " ")
	return strings.ReplaceAll(s, "\n", " ")
}
