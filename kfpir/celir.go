package kfpir

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
)

// The CEL environments of the KFP backend: conditions see the task's
// ExecutorInput fields (inputs.parameter_values), selectors see a Value
// whose string_value is the JSON text of the input; both have parseJson.

var parseJSONFunc = cel.Function("parseJson",
	cel.Overload("parseJson_string", []*cel.Type{cel.StringType}, cel.DynType,
		cel.UnaryBinding(func(v ref.Val) ref.Val {
			s, ok := v.(types.String)
			if !ok {
				return types.NewErr("parseJson needs a string")
			}
			var out any
			if err := json.Unmarshal([]byte(s), &out); err != nil {
				return types.NewErr("parseJson: %v", err)
			}
			return types.DefaultTypeAdapter.NativeToValue(out)
		})))

var (
	envOnce      sync.Once
	condEnv      *cel.Env
	selectorEnv  *cel.Env
	envErr       error
	programCache sync.Map // expr -> cel.Program
)

func envs() (*cel.Env, *cel.Env, error) {
	envOnce.Do(func() {
		condEnv, envErr = cel.NewEnv(
			cel.Variable("inputs", cel.MapType(cel.StringType, cel.DynType)),
			cel.Variable("outputs", cel.MapType(cel.StringType, cel.DynType)),
			parseJSONFunc,
			cel.CrossTypeNumericComparisons(true),
		)
		if envErr != nil {
			return
		}
		selectorEnv, envErr = cel.NewEnv(
			cel.Variable("string_value", cel.StringType),
			parseJSONFunc,
		)
	})
	return condEnv, selectorEnv, envErr
}

func program(env *cel.Env, kind, expr string) (cel.Program, error) {
	key := kind + "\x00" + expr
	if p, ok := programCache.Load(key); ok {
		return p.(cel.Program), nil
	}
	// Parsed, not type-checked: with dyn inputs the checker picks overloads
	// (int(dyn)) that fail at run time, and the backend does not check either.
	a, iss := env.Parse(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("invalid CEL %q: %s", expr, CELMessage(iss.Err().Error()))
	}
	p, err := env.Program(a)
	if err != nil {
		return nil, err
	}
	programCache.Store(key, p)
	return p, nil
}

func checkIRCondition(expr string) error {
	env, _, err := envs()
	if err != nil {
		return err
	}
	_, err = program(env, "cond", expr)
	return err
}

func compileSelector(expr string) (cel.Program, error) {
	_, env, err := envs()
	if err != nil {
		return nil, err
	}
	return program(env, "sel", expr)
}

// EvalCondition evaluates a triggerPolicy.condition over a task's resolved
// input parameter values (numbers as float64, as on the cluster).
func EvalCondition(expr string, params map[string]any) (bool, error) {
	env, _, err := envs()
	if err != nil {
		return false, err
	}
	p, err := program(env, "cond", expr)
	if err != nil {
		return false, err
	}
	vals := make(map[string]any, len(params))
	for k, v := range params {
		vals[k] = JSONCompatible(v)
	}
	out, _, err := p.Eval(map[string]any{
		"inputs":  map[string]any{"parameter_values": vals, "parameterValues": vals},
		"outputs": map[string]any{},
	})
	if err != nil {
		return false, fmt.Errorf("condition %q: %w", expr, err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("condition %q gave %v, not a boolean", expr, out.Value())
	}
	return b, nil
}

// EvalSelector applies a parameterExpressionSelector to a value: the
// expression sees string_value, the JSON text of the value.
func EvalSelector(expr string, v any) (any, error) {
	p, err := compileSelector(expr)
	if err != nil {
		return nil, err
	}
	text, ok := v.(string)
	if !ok {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		text = string(b)
	}
	out, _, err := p.Eval(map[string]any{"string_value": text})
	if err != nil {
		return nil, fmt.Errorf("selector %q: %w", expr, err)
	}
	return normalizeCEL(out.Value()), nil
}

func normalizeCEL(v any) any {
	// Round-trip through JSON to get plain maps, lists and float64 numbers.
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return v
	}
	return out
}
