package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mlpipe/mlpipe/compiler"
	"github.com/mlpipe/mlpipe/internal/diag"
)

func newValidateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check pipeline.yaml, component.yaml or KFP IR files and report every problem",
		Long: `Check pipeline.yaml, component.yaml and KFP IR files. Every problem is reported at
once, as FILE:LINE:COL: message (for IR: FILE: field.path: message). Exits 2 when
anything is wrong.`,
		Args: args(1, -1),
		RunE: func(cmd *cobra.Command, files []string) error {
			var all diag.Diagnostics
			var other []error
			for _, f := range files {
				err := compiler.ValidateFile(f)
				var ds diag.Diagnostics
				switch {
				case err == nil:
					fmt.Fprintf(a.stdout, "%s: ok\n", f)
				case errors.As(err, &ds):
					all = append(all, ds...)
				default:
					other = append(other, fmt.Errorf("%s: %w", f, err))
				}
			}
			if len(all) > 0 || len(other) > 0 {
				for _, e := range other {
					all = append(all, diag.Diagnostic{Msg: e.Error()})
				}
				return validationFailed{all}
			}
			return nil
		},
	}
}

type validationFailed struct{ ds diag.Diagnostics }

func (v validationFailed) Error() string {
	msg := v.ds.Error()
	return fmt.Sprintf("%s\n%d problem(s) found", msg, len(v.ds))
}
func (v validationFailed) InvalidInput() bool { return true }
