package platform

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// FieldError is a problem with one field of the platform spec: a wrong
// shape, a missing required field or a value out of range.
type FieldError struct {
	// Path is the field's full dotted path, e.g.
	// "platforms.kubernetes.deploymentSpec.executors.exec-train.secretAsEnv[0].keyToEnv".
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

// FieldErrors are all the problems found in one document, ordered by path.
// As an error it marks invalid input (exit code 2 on the command line).
type FieldErrors []*FieldError

func (es FieldErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// InvalidInput marks the errors as the user's mistake rather than mlpipe's.
func (FieldErrors) InvalidInput() bool { return true }

// decoder turns the plain values of a YAML or JSON document (maps, lists,
// strings, numbers, bools) into the tagged structs of this package. It
// behaves like encoding/json with DisallowUnknownFields, except that an
// unknown field is recorded (and decoding goes on) and every problem is
// reported with its full path, list indices included; encoding/json stops
// at the first unknown field and drops the indices.
type decoder struct {
	base    string   // full path of the value being decoded
	unknown []string // unknown fields, relative to base
	errs    FieldErrors
}

// rawDecoder is implemented by types that decode themselves.
type rawDecoder interface {
	decodeRaw(d *decoder, rel string, raw any)
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *decoder) fail(rel, format string, args ...any) {
	path := d.base
	if rel != "" {
		path = joinPath(d.base, rel)
	}
	d.errs = append(d.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// value decodes raw into v. A null leaves v unset.
func (d *decoder) value(rel string, raw any, v reflect.Value) {
	if raw == nil {
		return
	}
	if v.CanAddr() {
		if rd, ok := v.Addr().Interface().(rawDecoder); ok {
			rd.decodeRaw(d, rel, raw)
			return
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		nv := reflect.New(v.Type().Elem())
		d.value(rel, raw, nv.Elem())
		v.Set(nv)
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			d.fail(rel, "must be a mapping, not %s", shapeOf(raw))
			return
		}
		d.fields(rel, m, v)
	case reflect.Slice:
		l, ok := raw.([]any)
		if !ok {
			d.fail(rel, "must be a list, not %s", shapeOf(raw))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(l), len(l))
		for i, e := range l {
			d.value(fmt.Sprintf("%s[%d]", rel, i), e, s.Index(i))
		}
		v.Set(s)
	case reflect.Map: // map[string]string
		m, ok := raw.(map[string]any)
		if !ok {
			d.fail(rel, "must be a mapping of strings, not %s", shapeOf(raw))
			return
		}
		out := make(map[string]string, len(m))
		for _, k := range sortedKeys(m) {
			s, ok := scalarString(m[k])
			if !ok {
				d.fail(joinPath(rel, k), "must be a string, not %s", shapeOf(m[k]))
				continue
			}
			out[k] = s
		}
		v.Set(reflect.ValueOf(out))
	case reflect.String:
		s, ok := scalarString(raw)
		if !ok {
			d.fail(rel, "must be a string, not %s", shapeOf(raw))
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			d.fail(rel, "must be true or false, not %s", shapeOf(raw))
			return
		}
		v.SetBool(b)
	case reflect.Int64:
		n, err := toInt64(raw)
		if err != nil {
			d.fail(rel, "%v", err)
			return
		}
		v.SetInt(n)
	case reflect.Float64:
		f, ok := toFloat64(raw)
		if !ok {
			d.fail(rel, "must be a number, not %s", shapeOf(raw))
			return
		}
		v.SetFloat(f)
	case reflect.Interface:
		v.Set(reflect.ValueOf(raw))
	default:
		d.fail(rel, "cannot decode into %s", v.Type()) // a bug in this package
	}
}

// fields decodes a mapping into the struct v by the fields' json tags; a
// key may also be the proto (snake_case) name.
func (d *decoder) fields(rel string, m map[string]any, v reflect.Value) {
	t := v.Type()
	byName := map[string]int{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		byName[name] = i
		if s := snake(name); s != name {
			byName[s] = i
		}
	}
	seen := map[int]string{}
	for _, k := range sortedKeys(m) {
		i, ok := byName[k]
		if !ok {
			d.unknown = append(d.unknown, joinPath(rel, k))
			continue
		}
		if prev, dup := seen[i]; dup {
			d.fail(joinPath(rel, k), "set twice (also as %s)", prev)
			continue
		}
		seen[i] = k
		d.value(joinPath(rel, k), m[k], v.Field(i))
	}
}

// snake turns a lowerCamelCase JSON name into the proto field name.
func snake(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Auxiliary shapes of InputParameterSpec.
type paramRefJSON struct {
	RuntimeValue            *runtimeValueJSON `json:"runtimeValue"`
	ComponentInputParameter string            `json:"componentInputParameter"`
	TaskOutputParameter     *TaskOutputRef    `json:"taskOutputParameter"`
}

type runtimeValueJSON struct {
	Constant      any                `json:"constant"`
	ConstantValue *constantValueJSON `json:"constantValue"`
}

type constantValueJSON struct {
	StringValue *string  `json:"stringValue"`
	IntValue    *int64   `json:"intValue"`
	DoubleValue *float64 `json:"doubleValue"`
	BoolValue   *bool    `json:"boolValue"`
}

func (p *ParamRef) decodeRaw(d *decoder, rel string, raw any) {
	var j paramRefJSON
	before := len(d.errs)
	d.value(rel, raw, reflect.ValueOf(&j).Elem())
	if len(d.errs) > before {
		return
	}
	if rv := j.RuntimeValue; rv != nil {
		p.Constant = rv.Constant
		if cv := rv.ConstantValue; cv != nil && p.Constant == nil {
			switch {
			case cv.StringValue != nil:
				p.Constant = *cv.StringValue
			case cv.IntValue != nil:
				p.Constant = *cv.IntValue
			case cv.DoubleValue != nil:
				p.Constant = *cv.DoubleValue
			case cv.BoolValue != nil:
				p.Constant = *cv.BoolValue
			}
		}
	}
	p.ComponentInputParameter = j.ComponentInputParameter
	p.TaskOutputParameter = j.TaskOutputParameter
	n := 0
	for _, set := range []bool{p.Constant != nil, p.ComponentInputParameter != "", p.TaskOutputParameter != nil} {
		if set {
			n++
		}
	}
	if n > 1 {
		d.fail(rel, "set only one of runtimeValue, componentInputParameter and taskOutputParameter")
	}
}

// scalarString accepts a string, and a number or bool as its text (the way
// hand-written YAML often says `value: 1`).
func scalarString(raw any) (string, bool) {
	switch x := raw.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case json.Number:
		return x.String(), true
	}
	if f, ok := toFloat64(raw); ok {
		if n, err := toInt64(raw); err == nil {
			return strconv.FormatInt(n, 10), true
		}
		return strconv.FormatFloat(f, 'g', -1, 64), true
	}
	return "", false
}

// toInt64 accepts an integer, an integral float, and a string of an integer
// (proto3 JSON writes int64 as a string).
func toInt64(raw any) (int64, error) {
	rv := reflect.ValueOf(raw)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if rv.Uint() > math.MaxInt64 {
			return 0, fmt.Errorf("out of range")
		}
		return int64(rv.Uint()), nil
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		if f != math.Trunc(f) || f < -(1<<63) || f >= 1<<63 {
			return 0, fmt.Errorf("must be an integer")
		}
		return int64(f), nil
	case reflect.String:
		n, err := strconv.ParseInt(strings.TrimSpace(rv.String()), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("must be an integer")
		}
		return n, nil
	}
	return 0, fmt.Errorf("must be an integer, not %s", shapeOf(raw))
}

func toFloat64(raw any) (float64, bool) {
	if n, ok := raw.(json.Number); ok {
		f, err := n.Float64()
		return f, err == nil
	}
	rv := reflect.ValueOf(raw)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true
	}
	return 0, false
}

// shapeOf names the shape of a value for error messages, never the value
// itself.
func shapeOf(raw any) string {
	switch raw.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a bool"
	case nil:
		return "null"
	}
	if _, ok := toFloat64(raw); ok {
		return "a number"
	}
	return fmt.Sprintf("a %T", raw)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
