package docker

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"mvdan.cc/sh/v3/syntax"

	"github.com/mlpipe/mlpipe/pyfunc"
)

// TestSecurityDeriveScriptQuotesRequirements: requirements come from an
// untrusted IR and end up in the shell script of the deriving container;
// each reaches pip as one literal argument, whatever it holds.
func TestSecurityDeriveScriptQuotesRequirements(t *testing.T) {
	hostile := [][]string{
		{"--no-deps", "kfp==2.7.0", `x'; touch /pwned; echo '`, "$(id)", "`id`", "a\"b", "; rm -rf /", "--index-url=http://h/$HOME"},
		{"pandas"},
	}
	script := deriveScript(hostile, 1000, 1000)
	f, err := syntax.NewParser().Parse(strings.NewReader(script), "")
	if err != nil {
		t.Fatalf("the script does not parse: %v\n%s", err, script)
	}
	var got [][]string
	lit := func(w *syntax.Word) (string, bool) {
		var b strings.Builder
		for _, p := range w.Parts {
			switch p := p.(type) {
			case *syntax.Lit:
				b.WriteString(p.Value)
			case *syntax.SglQuoted:
				b.WriteString(p.Value)
			case *syntax.DblQuoted: // only without expansions
				for _, q := range p.Parts {
					l, ok := q.(*syntax.Lit)
					if !ok {
						return "", false
					}
					b.WriteString(l.Value)
				}
			default:
				return "", false
			}
		}
		return b.String(), true
	}
	syntax.Walk(f, func(n syntax.Node) bool {
		call, ok := n.(*syntax.CallExpr)
		if !ok || len(call.Args) < 5 {
			return true
		}
		var head []string
		for _, w := range call.Args[:4] {
			s, _ := lit(w)
			head = append(head, s)
		}
		if strings.Join(head, " ") != "python3 -m pip install" {
			return true
		}
		var words []string
		for _, w := range call.Args[5:] { // after --no-warn-script-location
			s, ok := lit(w)
			if !ok {
				t.Errorf("argument %q is not a literal", script[w.Pos().Offset():w.End().Offset()])
			}
			words = append(words, s)
		}
		got = append(got, words)
		return true
	})
	if diff := cmp.Diff(hostile, got); diff != "" {
		t.Errorf("pip arguments (-want +got):\n%s\n%s", diff, script)
	}
}

// TestNeedsHostNetwork: the deriving container gets the host's network
// only when pip must reach a server on this machine.
func TestNeedsHostNetwork(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		installs [][]string
		want     bool
	}{
		{"nothing", nil, [][]string{{"pandas"}}, false},
		{"public index", map[string]string{"PIP_INDEX_URL": "https://pypi.example.com/simple"}, nil, false},
		{"local index with a password", map[string]string{"PIP_INDEX_URL": "http://ci:pw@127.0.0.1:8080/simple"}, nil, true},
		{"localhost extra index", map[string]string{"PIP_EXTRA_INDEX_URL": "https://pypi.org/simple http://localhost:3141/root/dev"}, nil, true},
		{"IPv6 loopback", map[string]string{"PIP_INDEX_URL": "http://[::1]:8080/simple"}, nil, true},
		{"local wheel directory", map[string]string{"PIP_FIND_LINKS": "/opt/wheels"}, nil, false},
		{"option in the IR", nil, [][]string{{"--index-url=http://127.0.0.1:9/simple", "x"}}, true},
		{"trusted host only", map[string]string{"PIP_TRUSTED_HOST": "127.0.0.1"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := needsHostNetwork(pyfunc.Settings{Env: tt.env}, tt.installs); got != tt.want {
				t.Errorf("needsHostNetwork = %v, want %v", got, tt.want)
			}
		})
	}
}
