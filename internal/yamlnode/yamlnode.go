// Package yamlnode parses YAML into a small tree of nodes that remember their
// line and column, so that every error about a user's file can name the exact
// place. It wraps github.com/goccy/go-yaml's AST, resolves anchors, aliases and
// merge keys, and guards against hostile input (deep nesting, alias bombs,
// huge files) with errors instead of crashes.
package yamlnode

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Limits applied to every parse.
const (
	MaxBytes = 32 << 20 // largest file accepted
	MaxDepth = 128      // deepest nesting of maps and lists
	MaxNodes = 2_000_000
	// MaxExpandedBytes bounds the size of a document once its aliases are
	// expanded: the text of every scalar and key plus a small cost per
	// node. Counting nodes alone let a 40 KB file of aliases to lists of
	// long strings expand into hundreds of megabytes downstream.
	MaxExpandedBytes = 64 << 20
)

// nodeCost is what a node counts towards MaxExpandedBytes besides its text.
const nodeCost = 8

// Kind is the kind of a node.
type Kind int

// Node kinds.
const (
	Null Kind = iota
	String
	Int
	Float
	Bool
	Map
	Seq
)

func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case String:
		return "string"
	case Int:
		return "integer"
	case Float:
		return "number"
	case Bool:
		return "boolean"
	case Map:
		return "mapping"
	case Seq:
		return "list"
	}
	return "unknown"
}

// Pos is a position in a file, 1-based.
type Pos struct {
	Line, Col int
}

// Node is a YAML value with its position.
type Node struct {
	Kind  Kind
	Pos   Pos
	Str   string  // String
	Int   int64   // Int
	Float float64 // Float
	Bool  bool    // Bool
	Keys  []*Node // Map: keys, in file order (always String nodes)
	Vals  []*Node // Map: values, parallel to Keys
	Items []*Node // Seq
	// Quoted is true for a string scalar written in quotes.
	Quoted bool
	// size is the node's expanded size (see MaxExpandedBytes).
	size int64
}

// ExpandedSize is what the node would take written out with its aliases
// expanded: the bytes of its text plus a small cost per node.
func (n *Node) ExpandedSize() int64 {
	if n == nil {
		return 0
	}
	return n.size
}

// Get returns the value of key in a mapping, or nil.
func (n *Node) Get(key string) *Node {
	if n == nil || n.Kind != Map {
		return nil
	}
	for i, k := range n.Keys {
		if k.Str == key {
			return n.Vals[i]
		}
	}
	return nil
}

// Value converts the node to plain Go values: map[string]any, []any, string,
// int64, float64, bool and nil.
func (n *Node) Value() any {
	if n == nil {
		return nil
	}
	switch n.Kind {
	case String:
		return n.Str
	case Int:
		return n.Int
	case Float:
		return n.Float
	case Bool:
		return n.Bool
	case Map:
		m := make(map[string]any, len(n.Keys))
		for i, k := range n.Keys {
			m[k.Str] = n.Vals[i].Value()
		}
		return m
	case Seq:
		l := make([]any, len(n.Items))
		for i, it := range n.Items {
			l[i] = it.Value()
		}
		return l
	}
	return nil
}

// Error is a parse error at a position.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string {
	if e.Pos.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("%d:%d: %s", e.Pos.Line, e.Pos.Col, e.Msg)
}

// ParseAll parses every document of a YAML stream. Empty documents are
// returned as Null nodes.
func ParseAll(src []byte) ([]*Node, error) {
	if len(src) > MaxBytes {
		return nil, &Error{Msg: fmt.Sprintf("file is %d bytes, larger than the %d-byte limit", len(src), MaxBytes)}
	}
	if err := checkFlowDepth(src); err != nil {
		return nil, err
	}
	f, err := safeParse(src)
	if err != nil {
		return nil, err
	}
	c := &converter{anchors: map[string]*Node{}}
	var docs []*Node
	for _, d := range f.Docs {
		var n *Node
		if d.Body == nil {
			n = &Node{Kind: Null, Pos: Pos{1, 1}}
		} else {
			n, err = c.convert(d.Body, 0)
			if err != nil {
				return nil, err
			}
		}
		docs = append(docs, n)
	}
	if len(docs) == 0 {
		docs = append(docs, &Node{Kind: Null, Pos: Pos{1, 1}})
	}
	return docs, nil
}

// Parse parses a single-document YAML file.
func Parse(src []byte) (*Node, error) {
	docs, err := ParseAll(src)
	if err != nil {
		return nil, err
	}
	if len(docs) > 1 {
		return nil, &Error{Pos: docs[1].Pos, Msg: "expected one YAML document, found several"}
	}
	return docs[0], nil
}

func safeParse(src []byte) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, &Error{Msg: fmt.Sprintf("malformed YAML: %v", r)}
		}
	}()
	f, perr := parser.ParseBytes(src, 0)
	if perr != nil {
		return nil, convertParseError(perr)
	}
	return f, nil
}

func convertParseError(err error) error {
	var tokErr interface {
		GetToken() *token.Token
		GetMessage() string
	}
	if errors.As(err, &tokErr) {
		e := &Error{Msg: tokErr.GetMessage()}
		if tk := tokErr.GetToken(); tk != nil && tk.Position != nil {
			e.Pos = Pos{tk.Position.Line, tk.Position.Column}
		}
		return e
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i > 0 {
		msg = msg[:i]
	}
	return &Error{Msg: msg}
}

// checkFlowDepth rejects deeply nested flow collections before the parser,
// which is recursive, sees them.
func checkFlowDepth(src []byte) error {
	depth, line, col := 0, 1, 0
	var quote byte
	comment := false
	for _, b := range src {
		col++
		if b == '\n' {
			line++
			col = 0
			comment = false
			continue
		}
		if comment {
			continue
		}
		if quote != 0 {
			if b == quote {
				quote = 0
			}
			continue
		}
		switch b {
		case '"', '\'':
			quote = b
		case '#':
			comment = true
		case '[', '{':
			depth++
			if depth > MaxDepth {
				return &Error{Pos: Pos{line, col}, Msg: fmt.Sprintf("nesting deeper than %d levels", MaxDepth)}
			}
		case ']', '}':
			if depth > 0 {
				depth--
			}
		}
	}
	return nil
}

type converter struct {
	anchors map[string]*Node
	nodes   int
}

func pos(n ast.Node) Pos {
	if n == nil {
		return Pos{}
	}
	tk := n.GetToken()
	if tk == nil || tk.Position == nil {
		return Pos{}
	}
	return Pos{tk.Position.Line, tk.Position.Column}
}

// convert converts n and records its expanded size, refusing a node whose
// expansion is over MaxExpandedBytes before anything downstream allocates
// it.
func (c *converter) convert(n ast.Node, depth int) (*Node, error) {
	out, err := c.convertNode(n, depth)
	if err != nil {
		return nil, err
	}
	if out.size == 0 {
		out.size = sizeOf(out)
	}
	if out.size > MaxExpandedBytes {
		p := pos(n)
		if p.Line == 0 {
			p = out.Pos
		}
		return nil, &Error{Pos: p, Msg: fmt.Sprintf("value expands to more than %d MiB (aliases?): refusing it", MaxExpandedBytes>>20)}
	}
	return out, nil
}

// sizeOf computes a node's expanded size from its children's, saturating
// instead of overflowing.
func sizeOf(n *Node) int64 {
	s := int64(nodeCost + len(n.Str))
	add := func(x int64) {
		if s > math.MaxInt64-x {
			s = math.MaxInt64
			return
		}
		s += x
	}
	for _, it := range n.Items {
		add(it.size)
	}
	for i, k := range n.Keys {
		add(int64(nodeCost + len(k.Str)))
		add(n.Vals[i].size)
	}
	return s
}

func (c *converter) convertNode(n ast.Node, depth int) (*Node, error) {
	if depth > MaxDepth {
		return nil, &Error{Pos: pos(n), Msg: fmt.Sprintf("nesting deeper than %d levels", MaxDepth)}
	}
	c.nodes++
	if c.nodes > MaxNodes {
		return nil, &Error{Pos: pos(n), Msg: fmt.Sprintf("document has more than %d nodes (alias expansion?)", MaxNodes)}
	}
	p := pos(n)
	switch v := n.(type) {
	case nil:
		return &Node{Kind: Null}, nil
	case *ast.NullNode:
		return &Node{Kind: Null, Pos: p}, nil
	case *ast.StringNode:
		q := false
		if v.Token != nil {
			q = v.Token.Type == token.SingleQuoteType || v.Token.Type == token.DoubleQuoteType
		}
		return &Node{Kind: String, Pos: p, Str: v.Value, Quoted: q}, nil
	case *ast.LiteralNode:
		s := ""
		if v.Value != nil {
			s = v.Value.Value
		}
		return &Node{Kind: String, Pos: p, Str: s, Quoted: true}, nil
	case *ast.IntegerNode:
		switch iv := v.Value.(type) {
		case int64:
			return &Node{Kind: Int, Pos: p, Int: iv}, nil
		case uint64:
			if iv > math.MaxInt64 {
				return &Node{Kind: Float, Pos: p, Float: float64(iv)}, nil
			}
			return &Node{Kind: Int, Pos: p, Int: int64(iv)}, nil
		}
		if v.Token != nil {
			if i, err := strconv.ParseInt(v.Token.Value, 0, 64); err == nil {
				return &Node{Kind: Int, Pos: p, Int: i}, nil
			}
		}
		return nil, &Error{Pos: p, Msg: "integer out of range"}
	case *ast.FloatNode:
		return &Node{Kind: Float, Pos: p, Float: v.Value}, nil
	case *ast.InfinityNode:
		return &Node{Kind: Float, Pos: p, Float: v.Value}, nil
	case *ast.NanNode:
		return &Node{Kind: Float, Pos: p, Float: math.NaN()}, nil
	case *ast.BoolNode:
		return &Node{Kind: Bool, Pos: p, Bool: v.Value}, nil
	case *ast.TagNode:
		inner, err := c.convert(v.Value, depth)
		if err != nil {
			return nil, err
		}
		tag := ""
		if v.Start != nil {
			tag = v.Start.Value
		}
		switch tag {
		case "!!str":
			if inner.Kind != Map && inner.Kind != Seq {
				inner = &Node{Kind: String, Pos: inner.Pos, Str: scalarText(inner), Quoted: true}
			}
		case "!!binary":
			return nil, &Error{Pos: p, Msg: "binary values are not supported"}
		}
		return inner, nil
	case *ast.AnchorNode:
		inner, err := c.convert(v.Value, depth)
		if err != nil {
			return nil, err
		}
		if v.Name != nil {
			c.anchors[v.Name.String()] = inner
		}
		return inner, nil
	case *ast.AliasNode:
		name := ""
		if v.Value != nil {
			name = v.Value.String()
		}
		target, ok := c.anchors[name]
		if !ok {
			return nil, &Error{Pos: p, Msg: fmt.Sprintf("unknown alias %q", name)}
		}
		// Count the aliased subtree so that alias bombs are bounded.
		c.nodes += countNodes(target, MaxNodes-c.nodes+1)
		if c.nodes > MaxNodes {
			return nil, &Error{Pos: p, Msg: fmt.Sprintf("document has more than %d nodes (alias expansion)", MaxNodes)}
		}
		return target, nil
	case *ast.MappingNode:
		return c.mapping(p, v.Values, depth)
	case *ast.MappingValueNode:
		return c.mapping(p, []*ast.MappingValueNode{v}, depth)
	case *ast.SequenceNode:
		out := &Node{Kind: Seq, Pos: p}
		for _, it := range v.Values {
			cn, err := c.convert(it, depth+1)
			if err != nil {
				return nil, err
			}
			out.Items = append(out.Items, cn)
		}
		return out, nil
	case *ast.CommentGroupNode, *ast.CommentNode:
		return &Node{Kind: Null, Pos: p}, nil
	case *ast.DirectiveNode:
		return &Node{Kind: Null, Pos: p}, nil
	}
	return nil, &Error{Pos: p, Msg: fmt.Sprintf("unsupported YAML construct %s", n.Type())}
}

func (c *converter) mapping(p Pos, values []*ast.MappingValueNode, depth int) (*Node, error) {
	out := &Node{Kind: Map, Pos: p}
	seen := map[string]int{}
	set := func(k, v *Node, override bool) error {
		if i, ok := seen[k.Str]; ok {
			if !override {
				return nil
			}
			if i >= 0 {
				return &Error{Pos: k.Pos, Msg: fmt.Sprintf("duplicate key %q (first at line %d)", k.Str, out.Keys[i].Pos.Line)}
			}
		}
		seen[k.Str] = len(out.Keys)
		out.Keys = append(out.Keys, k)
		out.Vals = append(out.Vals, v)
		return nil
	}
	var merges []*Node
	for _, mv := range values {
		var keyNode ast.Node = mv.Key
		if mk, ok := keyNode.(*ast.MappingKeyNode); ok {
			keyNode = mk.Value
		}
		if _, ok := keyNode.(*ast.MergeKeyNode); ok {
			m, err := c.convert(mv.Value, depth+1)
			if err != nil {
				return nil, err
			}
			merges = append(merges, m)
			continue
		}
		k, err := c.convert(keyNode, depth+1)
		if err != nil {
			return nil, err
		}
		switch k.Kind {
		case Map, Seq:
			return nil, &Error{Pos: k.Pos, Msg: "mapping keys must be scalars"}
		}
		k = &Node{Kind: String, Pos: k.Pos, Str: scalarText(k), Quoted: k.Quoted}
		v, err := c.convert(mv.Value, depth+1)
		if err != nil {
			return nil, err
		}
		if i, dup := seen[k.Str]; dup {
			return nil, &Error{Pos: k.Pos, Msg: fmt.Sprintf("duplicate key %q (first at line %d)", k.Str, out.Keys[i].Pos.Line)}
		}
		if err := set(k, v, true); err != nil {
			return nil, err
		}
	}
	for _, m := range merges {
		srcs := []*Node{m}
		if m.Kind == Seq {
			srcs = m.Items
		}
		for _, s := range srcs {
			if s.Kind != Map {
				return nil, &Error{Pos: s.Pos, Msg: "merge key (<<) needs a mapping"}
			}
			for i, k := range s.Keys {
				if err := set(k, s.Vals[i], false); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

func countNodes(n *Node, limit int) int {
	if n == nil || limit <= 0 {
		return 0
	}
	c := 1
	for _, it := range n.Items {
		c += countNodes(it, limit-c)
		if c > limit {
			return c
		}
	}
	for _, v := range n.Vals {
		c += 1 + countNodes(v, limit-c)
		if c > limit {
			return c
		}
	}
	return c
}

// scalarText renders a scalar as the text a user wrote (for keys and !!str).
func scalarText(n *Node) string {
	switch n.Kind {
	case String:
		return n.Str
	case Int:
		return strconv.FormatInt(n.Int, 10)
	case Float:
		return strconv.FormatFloat(n.Float, 'g', -1, 64)
	case Bool:
		return strconv.FormatBool(n.Bool)
	case Null:
		return "null"
	}
	return ""
}

// Text returns the scalar text of a node ("" for collections).
func (n *Node) Text() string {
	if n == nil {
		return ""
	}
	return scalarText(n)
}
