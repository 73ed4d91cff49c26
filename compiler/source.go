package compiler

// Reading users' files, and small helpers over their YAML nodes.

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/mlpipe/mlpipe/internal/diag"
	"github.com/mlpipe/mlpipe/internal/yamlnode"
)

func jsonString(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}

// --- small helpers for reading yamlnode trees ---

func expectMap(d *diag.List, n *yamlnode.Node, what string) bool {
	if n == nil {
		return false
	}
	if n.Kind != yamlnode.Map {
		d.Node(n, "%s must be a mapping, not a %s", what, n.Kind)
		return false
	}
	return true
}

func checkKeys(d *diag.List, n *yamlnode.Node, what string, allowed ...string) {
	for _, k := range n.Keys {
		ok := false
		for _, a := range allowed {
			if k.Str == a {
				ok = true
				break
			}
		}
		if !ok {
			d.Node(k, "unknown key %q in %s (allowed: %s)", k.Str, what, strings.Join(allowed, ", "))
		}
	}
}

func str(d *diag.List, n *yamlnode.Node, what string) string {
	if n == nil || n.Kind == yamlnode.Null {
		return ""
	}
	if n.Kind == yamlnode.Map || n.Kind == yamlnode.Seq {
		d.Node(n, "%s must be a string, not a %s", what, n.Kind)
		return ""
	}
	return n.Text()
}
