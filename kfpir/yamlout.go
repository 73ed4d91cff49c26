package kfpir

import (
	"bytes"
	"encoding/json"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// writeYAML renders JSON-like values (maps, lists, strings, float64, bool,
// nil) as block-style YAML with sorted keys. It is much faster than a
// general YAML library on large IR and its output is deterministic;
// strings are quoted whenever a YAML 1.1 or 1.2 reader could take them for
// something else, and multi-line strings become literal blocks.
func writeYAML(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			b.WriteString("{}\n")
			return
		}
		writeMap(b, x, 0)
	case []any:
		if len(x) == 0 {
			b.WriteString("[]\n")
			return
		}
		writeList(b, x, 0)
	default:
		writeScalar(b, v, 0)
		b.WriteByte('\n')
	}
}

func indent(b *bytes.Buffer, n int) {
	for i := 0; i < n; i++ {
		b.WriteByte(' ')
	}
}

func writeMap(b *bytes.Buffer, m map[string]any, ind int) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 {
			indent(b, ind)
		}
		writeString(b, k, ind, true)
		b.WriteByte(':')
		writeValue(b, m[k], ind)
	}
}

// writeValue writes what follows "key:" or "- ".
func writeValue(b *bytes.Buffer, v any, ind int) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			b.WriteString(" {}\n")
			return
		}
		b.WriteByte('\n')
		indent(b, ind+2)
		writeMap(b, x, ind+2)
	case []any:
		if len(x) == 0 {
			b.WriteString(" []\n")
			return
		}
		b.WriteByte('\n')
		indent(b, ind)
		writeList(b, x, ind)
	default:
		b.WriteByte(' ')
		writeScalar(b, v, ind)
		b.WriteByte('\n')
	}
}

func writeList(b *bytes.Buffer, l []any, ind int) {
	for i, e := range l {
		if i > 0 {
			indent(b, ind)
		}
		b.WriteString("-")
		switch x := e.(type) {
		case map[string]any:
			if len(x) == 0 {
				b.WriteString(" {}\n")
				continue
			}
			b.WriteByte(' ')
			writeMap(b, x, ind+2)
		case []any:
			if len(x) == 0 {
				b.WriteString(" []\n")
				continue
			}
			b.WriteByte(' ')
			writeList(b, x, ind+2)
		default:
			b.WriteByte(' ')
			writeScalar(b, e, ind+2)
			b.WriteByte('\n')
		}
	}
}

func writeScalar(b *bytes.Buffer, v any, ind int) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case string:
		writeString(b, x, ind, false)
	case float64:
		b.WriteString(yamlFloat(x))
	default:
		j, err := json.Marshal(x)
		if err != nil {
			b.WriteString("null")
			return
		}
		b.Write(j)
	}
}

// yamlFloat writes a number that every YAML reader parses as a number:
// plain digits when short, else exponent form with a decimal point.
func yamlFloat(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return "null"
	}
	if a := math.Abs(f); a == 0 || (a >= 1e-4 && a < 1e15) {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	s := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(s, "e")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	return mant + "e" + exp
}

var (
	yamlSpecial = regexp.MustCompile(`^(?i:y|n|yes|no|true|false|on|off|null|~|[-+]?\.inf|\.nan)$`)
	yamlNumber  = regexp.MustCompile(`^[-+]?(0[xob][0-9a-fA-F_]+|[0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?|\.[0-9_]+([eE][-+]?[0-9]+)?|[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?)$`)
	yamlDate    = regexp.MustCompile(`^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}`)
)

func plainSafe(s string) bool {
	if s == "" || s != strings.TrimSpace(s) {
		return false
	}
	if strings.ContainsAny(s[:1], "-?:,[]{}#&*!|>'\"%@`") {
		return false
	}
	// Only short words (true, off, null...) and strings starting with a
	// digit, a sign or a dot can read as something other than a string.
	c := s[0]
	if len(s) <= 5 || (c >= '0' && c <= '9') || c == '+' || c == '.' {
		if yamlSpecial.MatchString(s) || yamlNumber.MatchString(s) || yamlDate.MatchString(s) {
			return false
		}
	}
	if strings.Contains(s, ": ") || strings.Contains(s, " #") || strings.HasSuffix(s, ":") {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\u0085' || r == '\u2028' || r == '\u2029' || r == '\ufeff' {
			return false
		}
	}
	return true
}

func literalSafe(s string) bool {
	if !strings.Contains(s, "\n") || strings.HasPrefix(s, " ") || strings.HasPrefix(s, "\n") {
		return false
	}
	for _, r := range s {
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f || r == '\u0085' || r == '\u2028' || r == '\u2029' || r == '\ufeff' || r == '\r' {
			return false
		}
	}
	// Lines that are only spaces or start with a tab would change meaning.
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "\t") || (line != "" && strings.TrimLeft(line, " ") == "") {
			return false
		}
	}
	return true
}

func writeString(b *bytes.Buffer, s string, ind int, key bool) {
	if plainSafe(s) {
		b.WriteString(s)
		return
	}
	if !key && literalSafe(s) {
		body := s
		switch {
		case strings.HasSuffix(s, "\n\n"):
			b.WriteString("|+\n")
		case strings.HasSuffix(s, "\n"):
			b.WriteString("|\n")
		default:
			b.WriteString("|-\n")
		}
		body = strings.TrimRight(body, "\n")
		trailing := len(s) - len(body)
		for i, line := range strings.Split(body, "\n") {
			if i > 0 {
				b.WriteByte('\n')
			}
			if line != "" {
				indent(b, ind+2)
				b.WriteString(line)
			}
		}
		// The caller writes the final newline; extra trailing newlines of
		// a |+ block are written here.
		for i := 1; i < trailing; i++ {
			b.WriteByte('\n')
		}
		return
	}
	var q bytes.Buffer
	enc := json.NewEncoder(&q)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	b.Write(bytes.TrimSuffix(q.Bytes(), []byte("\n")))
}
