package kfptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// uploadNameRE is what upload accepts as pipelineInfo.name.
var uploadNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,127}$`)

// specKeys are the top-level PipelineSpec fields; anything else makes the
// real server's protojson parse fail.
var specKeys = map[string]bool{
	"pipelineInfo": true, "deploymentSpec": true, "sdkVersion": true, "schemaVersion": true,
	"components": true, "root": true, "defaultPipelineRoot": true,
}

// checkSpec validates a PipelineSpec document as the server's template
// parsing does (docs/kfp-api.md §1.2).
func checkSpec(spec map[string]any, strictName bool) error {
	for k := range spec {
		if !specKeys[k] {
			return fmt.Errorf("unknown template format: proto: unknown field %q", k)
		}
	}
	if v, _ := spec["schemaVersion"].(string); v != "2.1.0" {
		return fmt.Errorf("KFP only supports schema version 2.1.0, but the pipeline spec has version %q", v)
	}
	info, _ := spec["pipelineInfo"].(map[string]any)
	name, _ := info["name"].(string)
	if name == "" {
		return errors.New("pipeline name is empty")
	}
	if strictName && !uploadNameRE.MatchString(name) {
		return fmt.Errorf("pipeline name %q: the name must consist of lower case alphanumeric characters or '-', and must start with an alphanumeric character", name)
	}
	if _, ok := spec["root"].(map[string]any); !ok {
		return errors.New("no pipeline spec is provided: root is missing")
	}
	return nil
}

// unwrapSpec splits an inline run spec: the PipelineSpec itself, or
// {"pipeline_spec": ..., "platform_spec": ...}.
func unwrapSpec(v any) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("pipeline_spec is not an object")
	}
	if ps, ok := m["pipeline_spec"]; ok {
		for k := range m {
			if k != "pipeline_spec" && k != "platform_spec" {
				return nil, fmt.Errorf("unknown field %q next to pipeline_spec", k)
			}
		}
		if pl, ok := m["platform_spec"].(map[string]any); ok {
			if _, ok := pl["platforms"]; !ok {
				return nil, errors.New("platform_spec has no platforms")
			}
		}
		inner, ok := ps.(map[string]any)
		if !ok {
			return nil, errors.New("pipeline_spec is not an object")
		}
		return inner, nil
	}
	return m, nil
}

// parseYAMLSpec reads an uploaded file: a PipelineSpec document, optionally
// followed by a PlatformSpec document.
func parseYAMLSpec(b []byte) (map[string]any, error) {
	var docs [][]byte
	var cur bytes.Buffer
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if strings.TrimRight(line, "\r\n") == "---" {
			docs = append(docs, append([]byte(nil), cur.Bytes()...))
			cur.Reset()
			continue
		}
		cur.WriteString(line)
	}
	docs = append(docs, cur.Bytes())
	var spec map[string]any
	for _, d := range docs {
		if len(bytes.TrimSpace(d)) == 0 {
			continue
		}
		j, err := yaml.YAMLToJSON(d)
		if err != nil {
			return nil, fmt.Errorf("invalid YAML: %v", err)
		}
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(j))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("the document is not a mapping: %v", err)
		}
		if _, ok := m["platforms"]; ok {
			continue
		}
		if spec != nil {
			return nil, errors.New("more than one pipeline spec document")
		}
		spec = m
	}
	if spec == nil {
		return nil, errors.New("no pipeline spec is provided")
	}
	return spec, nil
}

// checkParams checks runtime parameters against the spec's root inputs as
// the server does: no extras, JSON types matching parameterType, required
// inputs present.
func checkParams(spec map[string]any, params map[string]any) error {
	root, _ := spec["root"].(map[string]any)
	in, _ := root["inputDefinitions"].(map[string]any)
	defs, _ := in["parameters"].(map[string]any)
	var extra []string
	for n := range params {
		if _, ok := defs[n]; !ok {
			extra = append(extra, n)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return fmt.Errorf("parameter(s) provided are not required by pipeline: %s", strings.Join(extra, ", "))
	}
	names := make([]string, 0, len(defs))
	for n := range defs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d, _ := defs[n].(map[string]any)
		t, _ := d["parameterType"].(string)
		v, given := params[n]
		if !given {
			_, hasDefault := d["defaultValue"]
			if opt, _ := d["isOptional"].(bool); !opt && !hasDefault {
				return fmt.Errorf("parameter %s is required but not provided", n)
			}
			continue
		}
		if !jsonTypeOK(t, v) {
			return fmt.Errorf("input parameter %s requires type %s, but the value is %T %v", n, t, v, v)
		}
	}
	return nil
}

// jsonTypeOK checks a value decoded with UseNumber.
func jsonTypeOK(t string, v any) bool {
	switch t {
	case "NUMBER_INTEGER":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		f, err := n.Float64()
		return err == nil && f == math.Trunc(f)
	case "NUMBER_DOUBLE":
		_, ok := v.(json.Number)
		return ok
	case "STRING":
		_, ok := v.(string)
		return ok
	case "BOOLEAN":
		_, ok := v.(bool)
		return ok
	case "LIST":
		_, ok := v.([]any)
		return ok
	case "STRUCT", "TASK_CONFIG":
		_, ok := v.(map[string]any)
		return ok
	}
	return true
}
