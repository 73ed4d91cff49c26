package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mlpipe/mlpipe/compiler"
	"github.com/mlpipe/mlpipe/kfpir"
)

type compileOptions struct {
	output string
	format string
}

func newCompileCmd(a *app) *cobra.Command {
	var o compileOptions
	cmd := &cobra.Command{
		Use:   "compile PIPELINE",
		Short: "Compile a pipeline.yaml (or its directory) into KFP v2 IR",
		Long: `Compile a pipeline.yaml, or the directory that holds one, into KFP v2 IR: the
PipelineSpec a KFP cluster accepts and "mlpipe run" executes. The output is deterministic.`,
		Args: args(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCompile(a, o, args[0])
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "write the IR to FILE (default: standard output)")
	cmd.Flags().StringVar(&o.format, "format", "yaml", "yaml or json")
	return cmd
}

func runCompile(a *app, o compileOptions, path string) error {
	if o.format != "yaml" && o.format != "json" {
		return usagef("--format must be yaml or json, not %q", o.format)
	}
	p, err := compiler.LoadPipeline(path)
	if err != nil {
		return err
	}
	spec, err := compiler.Compile(p)
	if err != nil {
		return err
	}
	b, err := kfpir.Marshal(spec, kfpir.Format(o.format))
	if err != nil {
		return err
	}
	if o.output == "" || o.output == "-" {
		_, err = a.stdout.Write(b)
		return err
	}
	// Like any compiler: the output's directory must exist (a typo
	// must not create a tree), and a directory is not an output file.
	dir := filepath.Dir(o.output)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return usagef("-o %s: directory %s does not exist", o.output, dir)
	}
	if st, err := os.Stat(o.output); err == nil && st.IsDir() {
		return usagef("-o %s is a directory", o.output)
	}
	// Written beside it, then renamed over it: never half a file, and
	// never through a link planted at a predictable temporary name.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(o.output)+".*.tmp")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), o.output); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	fmt.Fprintf(a.stderr, "compiled %s -> %s\n", path, o.output)
	return nil
}
