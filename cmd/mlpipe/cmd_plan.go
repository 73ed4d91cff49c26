package main

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mlpipe/mlpipe/compiler"
)

type planOptions struct {
	params []string
	format string
}

func newPlanCmd(a *app) *cobra.Command {
	var o planOptions
	cmd := &cobra.Command{
		Use:   "plan PIPELINE|IR",
		Short: "Show how a run will unfold: stages, parallel tasks, resources, critical path",
		Args:  args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPlan(a, o, args[0])
		},
	}
	cmd.Flags().StringArrayVarP(&o.params, "param", "p", nil, "pipeline parameter NAME=VALUE (repeatable)")
	cmd.Flags().StringVar(&o.format, "format", "text", "text, json, dot or mermaid")
	return cmd
}

func runPlan(a *app, o planOptions, path string) error {
	switch o.format {
	case "text", "json", "dot", "mermaid":
	default:
		return usagef("--format must be text, json, dot or mermaid, not %q", o.format)
	}
	ir, params, err := loadWithParams(path, o.params)
	if err != nil {
		return err
	}
	pl, err := compiler.MakePlan(ir, params)
	if err != nil {
		return err
	}
	switch o.format {
	case "json":
		return pl.WriteJSON(a.stdout)
	case "dot":
		return pl.WriteDot(a.stdout)
	case "mermaid":
		return pl.WriteMermaid(a.stdout)
	}
	return pl.WriteText(a.stdout)
}

// loadAny loads a pipeline.yaml (compiling it) or an IR file as IR.
// loadWithParams loads a pipeline or IR and resolves -p NAME=VALUE flags
// against its inputs (defaults filled in).
func loadWithParams(path string, flags []string) (*compiler.IR, map[string]any, error) {
	ir, err := loadAny(path)
	if err != nil {
		return nil, nil, err
	}
	text, err := compiler.ParseParamFlags(flags)
	if err != nil {
		return nil, nil, err
	}
	params, err := compiler.ResolveParams(ir, text, nil)
	if err != nil {
		return nil, nil, err
	}
	return ir, params, nil
}

func loadAny(path string) (*compiler.IR, error) {
	src := path
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		src = filepath.Join(path, "pipeline.yaml")
	}
	b, err := compiler.ReadSource(src)
	if err != nil {
		return nil, err
	}
	kind, err := compiler.DetectKind(src, b)
	if err != nil {
		return nil, err
	}
	switch kind {
	case compiler.KindPipeline:
		p, err := compiler.ParsePipeline(src, b)
		if err != nil {
			return nil, err
		}
		spec, err := compiler.Compile(p)
		if err != nil {
			return nil, err
		}
		return compiler.FromSpec(src, spec)
	case compiler.KindIR:
		ir, err := compiler.LoadIRBytes(src, b)
		if err != nil {
			return nil, err
		}
		if err := compiler.ValidateIR(ir); err != nil {
			return nil, err
		}
		return ir, nil
	}
	return nil, usagef("%s is a %s, not a pipeline or KFP IR", path, kind)
}
