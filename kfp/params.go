package kfp

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
)

// CheckParameters checks run parameters against a PipelineSpec document's
// root inputs, as the server does (docs/kfp-api.md §1.6): every name must be
// declared, every value's JSON type must match its parameterType, and
// required parameters without a default must be given. The problems are
// returned together as an *InputError.
func CheckParameters(spec map[string]any, params map[string]any) error {
	defs := rootParams(spec)
	var problems []string
	names := make([]string, 0, len(params))
	for n := range params {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d, ok := defs[n].(map[string]any)
		if !ok {
			problems = append(problems, fmt.Sprintf("parameter %s is not an input of the pipeline", n))
			continue
		}
		t, _ := d["parameterType"].(string)
		if !typeMatches(t, params[n]) {
			problems = append(problems, fmt.Sprintf("parameter %s: %s is not a valid %s", n, describe(params[n]), t))
		}
	}
	req := make([]string, 0, len(defs))
	for n, raw := range defs {
		d, _ := raw.(map[string]any)
		_, hasDefault := d["defaultValue"]
		opt, _ := d["isOptional"].(bool)
		if _, given := params[n]; !given && !hasDefault && !opt {
			req = append(req, n)
		}
	}
	sort.Strings(req)
	for _, n := range req {
		problems = append(problems, fmt.Sprintf("parameter %s is required", n))
	}
	if len(problems) > 0 {
		return &InputError{Msg: strings.Join(problems, "; ")}
	}
	return nil
}

func rootParams(spec map[string]any) map[string]any {
	root, _ := spec["root"].(map[string]any)
	in, _ := root["inputDefinitions"].(map[string]any)
	p, _ := in["parameters"].(map[string]any)
	return p
}

// typeMatches says whether v encodes as the JSON type parameterType t
// needs. Unknown types pass: the server knows better.
func typeMatches(t string, v any) bool {
	switch t {
	case "NUMBER_INTEGER":
		f, ok := number(v)
		return ok && f == math.Trunc(f) && !math.IsInf(f, 0)
	case "NUMBER_DOUBLE":
		_, ok := number(v)
		return ok
	case "STRING":
		_, ok := v.(string)
		return ok
	case "BOOLEAN":
		_, ok := v.(bool)
		return ok
	case "LIST":
		rv := reflect.ValueOf(v)
		return v != nil && (rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array) && !isBytes(v)
	case "STRUCT", "TASK_CONFIG":
		rv := reflect.ValueOf(v)
		return v != nil && rv.Kind() == reflect.Map && rv.Type().Key().Kind() == reflect.String
	}
	return true
}

func isBytes(v any) bool { _, ok := v.([]byte); return ok }

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case string, bool, nil:
		return 0, false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		return f, !math.IsNaN(f) && !math.IsInf(f, 0)
	}
	return 0, false
}

func describe(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return snippet(string(b), 60)
}
