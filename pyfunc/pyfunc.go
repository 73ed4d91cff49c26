// Package pyfunc recognises the KFP SDK's Python function components
// (`@dsl.component`, "lightweight" components) in any IR: their container
// command is a `sh -c` prologue that pip-installs the `kfp` runtime and the
// component's `packages_to_install`, then runs `python3 -m
// kfp.dsl.executor_main` on the component's source.
//
// The SDK writes (kfp/dsl/component_factory.py, 2.x):
//
//	command:
//	- sh
//	- -c
//	- |
//	  if ! [ -x "$(command -v pip)" ]; then
//	      python3 -m ensurepip || python3 -m ensurepip --user || apt-get install python3-pip
//	  fi
//
//	  PIP_DISABLE_PIP_VERSION_CHECK=1 python3 -m pip install --quiet --no-warn-script-location 'kfp==2.7.0' '--no-deps' 'typing-extensions>=3.7.4,<5; python_version<"3.9"'  &&  python3 -m pip install --quiet --no-warn-script-location 'pandas' && "$0" "$@"
//	- sh
//	- -ec
//	- program_path=$(mktemp -d) ... python3 -m kfp.dsl.executor_main --component_module_path "$program_path/ephemeral_component.py" "$@"
//	- <the component's Python source>
//
// with `--index-url U --trusted-host H` options when the component names
// pip_index_urls, and, in newer SDKs, a variant that creates a virtual
// environment with --system-site-packages first. Parse reads the script
// with a real shell parser (mvdan.cc/sh) and returns the pip installs it
// makes, so that mlpipe can run them once — into a derived image (Docker)
// or a cached virtual environment (process executor) — after which the
// step's own prologue finds every requirement satisfied and makes no
// network call. The IR itself is never rewritten.
package pyfunc

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// Component is what a Python function component pip-installs before it runs.
type Component struct {
	// Installs are the script's pip install commands, in order.
	Installs []Install
	// Skippable: the prologue does nothing but get pip, make and enter a
	// virtual environment, pip-install and go on with "$0" "$@" (the SDK's
	// forms), so that once the packages are installed the step may start
	// at what it goes on with (WithoutPrologue). A prologue that does
	// anything else is kept.
	Skippable bool
}

// Install is one `pip install` command of the prologue.
type Install struct {
	// Requirements are the requirement specifiers, as written
	// ("kfp==2.7.0", "pandas", "typing-extensions>=3.7.4,<5; python_version<\"3.9\"").
	Requirements []string
	// Options are the pip options that change what is installed or where
	// it comes from, normalised to --name=value form (--index-url,
	// --extra-index-url, --trusted-host, --find-links, --no-deps, --pre,
	// --upgrade). Options that only change pip's output are dropped.
	Options []string
}

// Packages returns every requirement of the component, in order.
func (c *Component) Packages() []string {
	var out []string
	for _, in := range c.Installs {
		out = append(out, in.Requirements...)
	}
	return out
}

// Indexes returns the index URLs the component names (--index-url and
// --extra-index-url), in order.
func (c *Component) Indexes() []string { return IndexesOf(c.PipArgs()) }

// PipArgs returns the arguments of each pip install (Install.PipArgs).
func (c *Component) PipArgs() [][]string {
	out := make([][]string, len(c.Installs))
	for i, in := range c.Installs {
		out[i] = in.PipArgs()
	}
	return out
}

// KFPVersion returns the version of the kfp runtime the component pins
// ("2.7.0"), or "".
func (c *Component) KFPVersion() string {
	for _, r := range c.Packages() {
		if v, ok := strings.CutPrefix(r, "kfp=="); ok {
			return v
		}
	}
	return ""
}

// PipArgs returns the arguments of `pip install` for in: the options, then
// the requirements.
func (in Install) PipArgs() []string {
	out := append([]string{}, in.Options...)
	return append(out, in.Requirements...)
}

// Key is a stable text that identifies what the component installs; two
// components with the same key need the same packages.
func (c *Component) Key() string {
	var b strings.Builder
	for _, in := range c.Installs {
		b.WriteString("pip install")
		for _, a := range in.PipArgs() {
			b.WriteString(" " + syntaxQuote(a))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Hash is the SHA-256 of Key, hex.
func (c *Component) Hash() string {
	s := sha256.Sum256([]byte(c.Key()))
	return hex.EncodeToString(s[:])
}

// maxScript bounds the prologue a component may have; the SDK's is under a
// kilobyte.
const maxScript = 64 << 10

// Parse recognises a Python function component from its container command
// and arguments (as the IR has them, placeholders unresolved). It returns
// nil and a reason when the container is not one, or when its prologue is
// one mlpipe cannot reproduce exactly (then the step runs as written).
func Parse(command, args []string) (*Component, string) {
	if len(command) < 3 || command[0] != "sh" || command[1] != "-c" {
		return nil, "the command is not `sh -c SCRIPT ...`"
	}
	if !slices.ContainsFunc(append(slices.Clone(command[3:]), args...), func(s string) bool {
		return strings.Contains(s, "kfp.dsl.executor_main")
	}) {
		return nil, "the command does not run kfp.dsl.executor_main"
	}
	script := command[2]
	if len(script) > maxScript {
		return nil, "the pip prologue is too long"
	}
	if !strings.Contains(script, `"$0" "$@"`) {
		return nil, `the prologue does not go on with "$0" "$@"`
	}
	f, err := syntax.NewParser(syntax.Variant(syntax.LangPOSIX)).Parse(strings.NewReader(script), "")
	if err != nil {
		return nil, fmt.Sprintf("the prologue is not a shell script: %v", err)
	}
	c := &Component{}
	var reason string
	syntax.Walk(f, func(n syntax.Node) bool {
		call, ok := n.(*syntax.CallExpr)
		if !ok || reason != "" {
			return reason == ""
		}
		rest, isPip := pipInstallArgs(call.Args)
		if !isPip {
			return true
		}
		words := make([]string, 0, len(rest))
		for _, w := range rest {
			s, ok := literal(w)
			if !ok {
				reason = "a pip install argument is not a literal"
				return false
			}
			words = append(words, s)
		}
		in, why := parseInstall(words)
		if why != "" {
			reason = why
			return false
		}
		c.Installs = append(c.Installs, in)
		return true
	})
	if reason != "" {
		return nil, reason
	}
	if len(c.Installs) == 0 {
		return nil, "the prologue installs nothing"
	}
	c.Skippable = onlyKnownStatements(f)
	return c, ""
}

// onlyKnownStatements reports whether every top-level statement of the
// prologue is one the SDK writes: the `if ! [ -x "$(command -v pip)" ]`
// block, `export PIP_…=…`, `tmp=$(mktemp -d)`, `python3 -m venv …`,
// `. "$tmp/venv/bin/activate"`, pip installs, and "$0" "$@" (alone or
// after pip installs joined by &&).
func onlyKnownStatements(f *syntax.File) bool {
	text := func(n syntax.Node) (t string) {
		// The printer expects the nodes the parser makes for valid
		// scripts; whatever it cannot print is nothing known.
		defer func() {
			if recover() != nil {
				t = "\x00"
			}
		}()
		var b strings.Builder
		_ = syntax.NewPrinter().Print(&b, n)
		return strings.TrimSpace(b.String())
	}
	var known func(s *syntax.Stmt) bool
	known = func(s *syntax.Stmt) bool {
		if s.Negated || s.Background || len(s.Redirs) > 0 {
			return false
		}
		switch c := s.Cmd.(type) {
		case *syntax.IfClause:
			return strings.Contains(text(c), "command -v pip") && strings.Contains(text(c), "ensurepip")
		case *syntax.DeclClause:
			t := text(c)
			return strings.HasPrefix(t, "export PIP_") && !strings.ContainsAny(strings.TrimPrefix(t, "export "), " ;$`")
		case *syntax.BinaryCmd:
			return c.Op == syntax.AndStmt && known(c.X) && known(c.Y)
		case *syntax.CallExpr:
			if len(c.Args) == 0 {
				// tmp=$(mktemp -d)
				// (`tmp=` has no value; `tmp[0]=…` and `tmp=(…)` are not this.)
				a := c.Assigns
				return len(a) == 1 && a[0].Name != nil && a[0].Name.Value == "tmp" && a[0].Index == nil && a[0].Array == nil &&
					a[0].Value != nil && text(a[0].Value) == "$(mktemp -d)"
			}
			t := text(c)
			if _, isPip := pipInstallArgs(c.Args); isPip {
				return true
			}
			if len(c.Assigns) > 0 {
				return false
			}
			if v, ok := strings.CutPrefix(t, "export "); ok { // POSIX: a command
				return strings.HasPrefix(v, "PIP_") && !strings.ContainsAny(v, " ;$`&|")
			}
			return t == `"$0" "$@"` || strings.HasPrefix(t, "python3 -m venv ") || t == `. "$tmp/venv/bin/activate"`
		}
		return false
	}
	for _, s := range f.Stmts {
		if !known(s) {
			return false
		}
	}
	return true
}

// pipInstallArgs reports whether a command is `python3 -m pip install ...`
// (any python) or `pip install ...`, and returns the words after install.
func pipInstallArgs(args []*syntax.Word) ([]*syntax.Word, bool) {
	lit := func(i int) string {
		if i >= len(args) {
			return ""
		}
		s, _ := literal(args[i])
		return s
	}
	prog := path.Base(lit(0))
	switch {
	case strings.HasPrefix(prog, "python") && lit(1) == "-m" && lit(2) == "pip" && lit(3) == "install":
		return args[4:], true
	case (prog == "pip" || prog == "pip3") && lit(1) == "install":
		return args[2:], true
	}
	return nil, false
}

// literal returns the value of a word made only of literal text and quotes.
func literal(w *syntax.Word) (string, bool) {
	var b strings.Builder
	var part func(p syntax.WordPart) bool
	part = func(p syntax.WordPart) bool {
		switch p := p.(type) {
		case *syntax.Lit:
			// An unquoted backslash escapes the next character.
			v := p.Value
			for i := 0; i < len(v); i++ {
				if v[i] == '\\' && i+1 < len(v) {
					i++
				}
				b.WriteByte(v[i])
			}
		case *syntax.SglQuoted:
			if p.Dollar {
				return false
			}
			b.WriteString(p.Value)
		case *syntax.DblQuoted:
			if p.Dollar {
				return false
			}
			for _, q := range p.Parts {
				l, ok := q.(*syntax.Lit)
				if !ok {
					return false
				}
				// Inside double quotes, backslash escapes only $ ` " \ and newline.
				v := l.Value
				for i := 0; i < len(v); i++ {
					if v[i] == '\\' && i+1 < len(v) && strings.ContainsRune("$`\"\\\n", rune(v[i+1])) {
						i++
					}
					b.WriteByte(v[i])
				}
			}
		default:
			return false
		}
		return true
	}
	for _, p := range w.Parts {
		if !part(p) {
			return "", false
		}
	}
	return b.String(), true
}

// Options of pip install, by what Parse does with them.
var (
	valueOptions = map[string]string{
		"--index-url": "--index-url", "-i": "--index-url",
		"--extra-index-url": "--extra-index-url",
		"--trusted-host":    "--trusted-host",
		"--find-links":      "--find-links", "-f": "--find-links",
	}
	flagOptions = map[string]string{
		"--no-deps": "--no-deps", "--pre": "--pre", "--upgrade": "--upgrade", "-U": "--upgrade",
	}
	outputOptions = map[string]bool{
		"--quiet": true, "-q": true, "-qq": true, "--no-warn-script-location": true,
		"--disable-pip-version-check": true, "--no-cache-dir": true, "--progress-bar=off": true,
		"--no-input": true, "--verbose": true, "-v": true,
	}
)

// parseInstall reads the words after `pip install`.
func parseInstall(words []string) (Install, string) {
	var in Install
	for i := 0; i < len(words); i++ {
		w := words[i]
		if !strings.HasPrefix(w, "-") {
			if w == "" || strings.ContainsAny(w, "\x00\n") {
				return Install{}, fmt.Sprintf("requirement %q is not a requirement specifier", w)
			}
			in.Requirements = append(in.Requirements, w)
			continue
		}
		name, value, hasValue := strings.Cut(w, "=")
		if n, ok := valueOptions[name]; ok {
			if !hasValue {
				if i+1 >= len(words) {
					return Install{}, fmt.Sprintf("pip option %s has no value", w)
				}
				i++
				value = words[i]
			}
			in.Options = append(in.Options, n+"="+value)
			continue
		}
		if n, ok := flagOptions[w]; ok {
			in.Options = append(in.Options, n)
			continue
		}
		if outputOptions[w] {
			continue
		}
		return Install{}, fmt.Sprintf("pip option %s is not one mlpipe reproduces", w)
	}
	if len(in.Requirements) == 0 {
		return Install{}, "a pip install names no requirement"
	}
	return in, ""
}

// syntaxQuote quotes s for a POSIX shell when it needs quoting.
func syntaxQuote(s string) string {
	q, err := syntax.Quote(s, syntax.LangPOSIX)
	if err != nil {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return q
}

// ShellCommand returns a POSIX shell command line that runs `python -m pip
// install` for in.
func (in Install) ShellCommand(python string) string {
	var b strings.Builder
	b.WriteString(syntaxQuote(python) + " -m pip install --no-warn-script-location")
	for _, a := range in.PipArgs() {
		b.WriteString(" " + syntaxQuote(a))
	}
	return b.String()
}

// Display lists requirements for people: those with an environment marker
// ("; python_version<'3.9'") are counted, not shown.
func Display(reqs []string) string {
	var shown []string
	cond := 0
	for _, r := range reqs {
		if strings.Contains(r, ";") {
			cond++
			continue
		}
		shown = append(shown, r)
	}
	s := strings.Join(shown, " ")
	if cond > 0 {
		s += fmt.Sprintf(" (+%d conditional)", cond)
	}
	return s
}

// WithoutPrologue returns the command line a recognised component runs
// once its prologue is done: the prologue ends with `"$0" "$@"`, so `sh -c
// SCRIPT A B C...` goes on as `A B C...`. mlpipe runs that directly when it
// has installed the packages ahead of the step, which saves the step a pip
// start-up that would find everything installed. command and args are the
// resolved ones of a container Parse recognised.
func WithoutPrologue(command, args []string) ([]string, []string) {
	if len(command) < 3 {
		return command, args
	}
	rest := append(append([]string{}, command[3:]...), args...)
	if len(rest) == 0 {
		return command, args
	}
	if len(command) > 3 {
		return rest[:len(command)-3], rest[len(command)-3:]
	}
	return rest[:1], rest[1:]
}
