package kfpir

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// ParamError is a bad run parameter: invalid input (exit code 2).
type ParamError struct{ Msg string }

func (e *ParamError) Error() string { return e.Msg }

// InvalidInput marks the error as the user's.
func (e *ParamError) InvalidInput() bool { return true }

// ParseParamFlags splits -p NAME=VALUE flags.
func ParseParamFlags(flags []string) (map[string]string, error) {
	out := map[string]string{}
	for _, f := range flags {
		name, val, ok := strings.Cut(f, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, &ParamError{Msg: fmt.Sprintf("parameter %q: want NAME=VALUE", f)}
		}
		if _, dup := out[name]; dup {
			return nil, &ParamError{Msg: fmt.Sprintf("parameter %q given twice", name)}
		}
		out[name] = val
	}
	return out, nil
}

// ResolveParams validates run parameters against the pipeline's root
// inputs (docs/kfp-semantics.md §5.2) and fills defaults (§5.3). Values given as text
// (-p flags) are parsed by the declared type; typed values (from JSON) are
// checked. Optional parameters without a value or default are absent.
func ResolveParams(ir *IR, text map[string]string, typed map[string]any) (map[string]any, error) {
	defs := ir.Spec.GetRoot().GetInputDefinitions().GetParameters()
	var problems []string
	out := map[string]any{}
	var unknown []string
	for name := range text {
		if defs[name] == nil {
			unknown = append(unknown, name)
		}
	}
	for name := range typed {
		if defs[name] == nil {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		known := slices.Sorted(maps.Keys(defs))
		hint := "the pipeline has no parameters"
		if len(known) > 0 {
			hint = "parameters: " + strings.Join(known, ", ")
		}
		problems = append(problems, fmt.Sprintf("unknown parameter(s) %s (%s)", strings.Join(unknown, ", "), hint))
	}
	for _, name := range slices.Sorted(maps.Keys(defs)) {
		d := defs[name]
		var v any
		var have bool
		if s, ok := text[name]; ok {
			pv, err := ParseParamValue(d.GetParameterType(), s)
			if err != nil {
				problems = append(problems, fmt.Sprintf("parameter %s: %v", name, err))
				continue
			}
			v, have = pv, true
		} else if tv, ok := typed[name]; ok {
			pv, err := CheckValue(d.GetParameterType(), tv)
			if err != nil {
				problems = append(problems, fmt.Sprintf("parameter %s: %v", name, err))
				continue
			}
			v, have = pv, true
		}
		if !have {
			switch {
			case d.GetDefaultValue() != nil:
				dv, err := CheckValue(d.GetParameterType(), d.GetDefaultValue().AsInterface())
				if err != nil {
					dv = d.GetDefaultValue().AsInterface()
				}
				out[name] = dv
			case d.GetIsOptional():
			default:
				problems = append(problems, fmt.Sprintf("parameter %s (%s) is required: pass -p %s=VALUE", name, ParamTypeName(d.GetParameterType()), name))
			}
			continue
		}
		if lits := ir.Literals["root/"+name]; len(lits) > 0 && !inLiterals(v, lits) {
			problems = append(problems, fmt.Sprintf("parameter %s: %v is not one of the allowed values %v", name, v, lits))
			continue
		}
		out[name] = v
	}
	if len(problems) > 0 {
		return nil, &ParamError{Msg: strings.Join(problems, "\n")}
	}
	return out, nil
}

func inLiterals(v any, lits []any) bool {
	nv := JSONCompatible(v)
	for _, l := range lits {
		if reflect.DeepEqual(nv, JSONCompatible(l)) {
			return true
		}
	}
	return false
}
