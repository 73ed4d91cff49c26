package kfpir

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mlpipe/mlpipe/internal/yamlnode"
)

func TestWriteYAMLRoundTrips(t *testing.T) {
	strs := []string{"", " ", "plain", "true", "True", "yes", "no", "off", "null", "~", "1", "0x1f", "1e5", "1.5", ".inf", "-", "- a", "a: b", "a:", "#x", "x #y",
		"{{$.inputs.parameters['x']}}", "[a]", "'q'", `"q"`, "a\nb", "a\nb\n", "a\n\n", "  lead", "trail ", "tab\there", "\ttab", "line\n  indented\n", "x\r\ny",
		"ünïcødé ✓", "2001-12-14", "12:30", "@at", "%pct", "`bt", "*star", "&amp", "!bang", "|pipe", ">gt", "a,b", "\x01ctl", "line\n \nspaces-only line",
		"sh -c 'echo \"$0\"'", "key: value\nother: 1\n"}
	var list []any
	m := map[string]any{}
	for _, s := range strs {
		list = append(list, s)
		m[s] = s
	}
	vals := []any{
		map[string]any{"strings": list, "keys": m, "nums": []any{0.0, 1.0, -2.5, 1e21, 4.294967296, 1e-7}, "bools": []any{true, false, nil},
			"empty": map[string]any{}, "emptyList": []any{}, "nested": []any{[]any{"a", []any{}}, map[string]any{"x": []any{map[string]any{}}}}},
		[]any{"top", map[string]any{"a": "b\nc"}},
	}
	for _, v := range vals {
		var b bytes.Buffer
		writeYAML(&b, v)
		n, err := yamlnode.Parse(b.Bytes())
		if err != nil {
			t.Fatalf("output does not parse: %v\n%s", err, b.String())
		}
		got := NormalizeNumbers(n.Value())
		want := NormalizeNumbers(v)
		if diff := cmp.Diff(toFloat(want), toFloat(got)); diff != "" {
			t.Errorf("round trip (-want +got):\n%s\nYAML:\n%s", diff, b.String())
		}
	}
}

func toFloat(v any) any {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = toFloat(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toFloat(e)
		}
		return out
	}
	return v
}
