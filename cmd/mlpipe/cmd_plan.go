package main

import (
	"context"

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
			return runPlan(cmd.Context(), a, o, args[0])
		},
	}
	cmd.Flags().StringArrayVarP(&o.params, "param", "p", nil, "pipeline parameter NAME=VALUE (repeatable)")
	cmd.Flags().StringVar(&o.format, "format", "text", "text, json, dot or mermaid")
	return cmd
}

func runPlan(ctx context.Context, a *app, o planOptions, path string) error {
	switch o.format {
	case "text", "json", "dot", "mermaid":
	default:
		return usagef("--format must be text, json, dot or mermaid, not %q", o.format)
	}
	ir, params, err := compiler.OpenWithParams(path, o.params)
	if err != nil {
		return err
	}
	pl, err := compiler.MakePlan(ir, params)
	if err != nil {
		return err
	}
	a.markPrepared(ctx, ir, path, pl)
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
