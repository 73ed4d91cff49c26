package compiler

import (
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/parser"
	pb "github.com/kubeflow/pipelines/api/v2alpha1/go/pipelinespec"
	"github.com/mlpipe/mlpipe/kfpir"
)

// celRef is a reference found in a when: expression.
type celRef struct {
	Kind   RefKind // RefInput, RefTask or RefItem
	Name   string  // input or task name
	Output string  // task output
}

func (r celRef) String() string {
	switch r.Kind {
	case RefInput:
		return "inputs." + r.Name
	case RefTask:
		return "tasks." + r.Name + ".outputs." + r.Output
	}
	return "item"
}

// celVar is a declared variable of a when: expression.
type celVar struct {
	ref celRef
	typ Type
	dyn bool // type unknown at compile time (loop items over parameters)
}

func celType(v celVar) *cel.Type {
	if v.dyn {
		return cel.DynType
	}
	switch v.typ.Param {
	case pb.ParameterType_STRING:
		return cel.StringType
	case pb.ParameterType_NUMBER_INTEGER:
		return cel.IntType
	case pb.ParameterType_NUMBER_DOUBLE:
		return cel.DoubleType
	case pb.ParameterType_BOOLEAN:
		return cel.BoolType
	case pb.ParameterType_LIST:
		return cel.ListType(cel.DynType)
	case pb.ParameterType_STRUCT, pb.ParameterType_TASK_FINAL_STATUS:
		return cel.MapType(cel.StringType, cel.DynType)
	}
	return cel.DynType
}

// parseWhen parses a when: expression and lists the references it uses.
func parseWhen(expr string) (*cel.Ast, []celRef, error) {
	env, err := cel.NewEnv(cel.ClearMacros())
	if err != nil {
		return nil, nil, err
	}
	a, iss := env.Parse(expr)
	if iss.Err() != nil {
		return nil, nil, fmt.Errorf("invalid CEL: %s", kfpir.CELMessage(iss.Err().Error()))
	}
	var refs []celRef
	var walkErr error
	visit(a.NativeRep().Expr(), func(e ast.Expr) bool {
		chain, ok := selectChain(e)
		if !ok {
			return true
		}
		switch {
		case chain[0] == "inputs":
			if len(chain) < 2 {
				walkErr = fmt.Errorf("use inputs.NAME")
				return false
			}
			refs = append(refs, celRef{Kind: RefInput, Name: chain[1]})
			return false
		case chain[0] == "tasks":
			if len(chain) < 4 || chain[2] != "outputs" {
				walkErr = fmt.Errorf("use tasks.NAME.outputs.NAME (found %s)", strings.Join(chain, "."))
				return false
			}
			refs = append(refs, celRef{Kind: RefTask, Name: chain[1], Output: chain[3]})
			return false
		case chain[0] == "item":
			refs = append(refs, celRef{Kind: RefItem})
			return false
		}
		return true
	})
	if walkErr != nil {
		return nil, nil, walkErr
	}
	return a, refs, nil
}

// checkWhen type-checks a when: expression against declared variables.
func checkWhen(a *cel.Ast, vars []celVar) error {
	opts := []cel.EnvOption{cel.ClearMacros()}
	declared := map[string]bool{}
	for _, v := range vars {
		name := v.ref.String()
		if declared[name] {
			continue
		}
		declared[name] = true
		opts = append(opts, cel.Variable(name, celType(v)))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return err
	}
	checked, iss := env.Check(a)
	if iss.Err() != nil {
		return fmt.Errorf("%s", kfpir.CELMessage(iss.Err().Error()))
	}
	if !checked.OutputType().IsExactType(types.BoolType) && !checked.OutputType().IsExactType(types.DynType) {
		return fmt.Errorf("must be a boolean expression, not %s", checked.OutputType())
	}
	return nil
}

// rewriteWhen rewrites a when: expression into the CEL the KFP backend
// evaluates: every reference becomes inputs.parameter_values['KEY'] of the
// group task, wrapped in int() for integers (numbers arrive as doubles).
func rewriteWhen(a *cel.Ast, key func(celRef) (string, bool)) (string, error) {
	fac := ast.NewExprFactory()
	next := int64(1 << 20)
	id := func() int64 { next++; return next }
	var rwErr error
	visit(a.NativeRep().Expr(), func(e ast.Expr) bool {
		chain, ok := selectChain(e)
		if !ok {
			return true
		}
		var ref celRef
		switch chain[0] {
		case "inputs":
			ref = celRef{Kind: RefInput, Name: chain[1]}
		case "tasks":
			ref = celRef{Kind: RefTask, Name: chain[1], Output: chain[3]}
		case "item":
			ref = celRef{Kind: RefItem}
		default:
			return true
		}
		k, isInt := key(ref)
		if k == "" {
			rwErr = fmt.Errorf("no channel for %s", ref)
			return false
		}
		var repl ast.Expr = fac.NewCall(id(), "_[_]",
			fac.NewSelect(id(), fac.NewIdent(id(), "inputs"), "parameter_values"),
			fac.NewLiteral(id(), types.String(k)))
		if isInt {
			repl = fac.NewCall(id(), "int", repl)
		}
		// item.field keeps its field selections on top of the item.
		if chain[0] == "item" && len(chain) > 1 {
			for _, f := range chain[1:] {
				repl = fac.NewSelect(id(), repl, f)
			}
		}
		e.SetKindCase(repl)
		return false
	})
	if rwErr != nil {
		return "", rwErr
	}
	s, err := parser.Unparse(a.NativeRep().Expr(), a.NativeRep().SourceInfo())
	if err != nil {
		return "", err
	}
	return s, nil
}

// selectChain returns the dotted names of a select chain rooted at an
// identifier: inputs.x -> [inputs x].
func selectChain(e ast.Expr) ([]string, bool) {
	var rev []string
	cur := e
	for cur.Kind() == ast.SelectKind {
		s := cur.AsSelect()
		if s.IsTestOnly() {
			return nil, false
		}
		rev = append(rev, s.FieldName())
		cur = s.Operand()
	}
	if cur.Kind() != ast.IdentKind {
		return nil, false
	}
	chain := []string{cur.AsIdent()}
	for i := len(rev) - 1; i >= 0; i-- {
		chain = append(chain, rev[i])
	}
	switch chain[0] {
	case "inputs", "tasks", "item":
		return chain, true
	}
	return nil, false
}

// visit walks an expression depth-first; f returns false to skip children.
func visit(e ast.Expr, f func(ast.Expr) bool) {
	if e == nil || !f(e) {
		return
	}
	switch e.Kind() {
	case ast.CallKind:
		c := e.AsCall()
		if c.IsMemberFunction() {
			visit(c.Target(), f)
		}
		for _, a := range c.Args() {
			visit(a, f)
		}
	case ast.SelectKind:
		visit(e.AsSelect().Operand(), f)
	case ast.ListKind:
		for _, el := range e.AsList().Elements() {
			visit(el, f)
		}
	case ast.MapKind:
		for _, en := range e.AsMap().Entries() {
			me := en.AsMapEntry()
			visit(me.Key(), f)
			visit(me.Value(), f)
		}
	case ast.StructKind:
		for _, en := range e.AsStruct().Fields() {
			visit(en.AsStructField().Value(), f)
		}
	case ast.ComprehensionKind:
		c := e.AsComprehension()
		visit(c.IterRange(), f)
		visit(c.AccuInit(), f)
		visit(c.LoopCondition(), f)
		visit(c.LoopStep(), f)
		visit(c.Result(), f)
	}
}
