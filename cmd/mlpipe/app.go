package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/spf13/cobra"

	"github.com/mlpipe/mlpipe/compiler"
	"github.com/mlpipe/mlpipe/kfpir"
	"github.com/mlpipe/mlpipe/storage"
)

// app holds what every command shares: the streams, the global flags and
// the configuration resolved for the command that runs.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	root           *cobra.Command
	configFile     string
	cfg            *Config
	log            *slog.Logger
	// transfers, once a run's progress view exists, is told about large
	// artifact transfers (the store is opened before the view).
	transfers atomic.Pointer[func(storage.Progress)]
}

// reportTransfer passes a transfer's progress to the view, if there is one.
func (a *app) reportTransfer(p storage.Progress) {
	if f := a.transfers.Load(); f != nil {
		(*f)(p)
	}
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *app {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "mlpipe",
		Short: "Compile, run, submit and benchmark Kubeflow Pipelines",
		Long: `mlpipe compiles task-graph pipelines into Kubeflow Pipelines (KFP) v2 IR, runs any
KFP IR on a workstation (in parallel, with GPUs allocated per step), submits the same IR
to a KFP cluster, and benchmarks each component's execution time.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(a.configFile, cmd.Flags())
			if err != nil {
				return err
			}
			a.cfg = cfg
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(strings.ToUpper(cfg.LogLevel))); err != nil {
				return usagef("log level must be debug, info, warn or error, not %q", cfg.LogLevel)
			}
			a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: lvl}))
			return nil
		},
	}
	// An unknown command is a usage error (exit code 2), as unknown flags
	// are; without arguments mlpipe prints its help.
	root.Args = func(cmd *cobra.Command, argv []string) error {
		if len(argv) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", argv[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(argv[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return usagef("%s", msg)
	}
	root.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	root.SuggestionsMinimumDistance = 2
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.configFile, "config", "", "configuration file (default: mlpipe.yaml, then $XDG_CONFIG_HOME/mlpipe/config.yaml)")
	pf.String("state-dir", "", "run history and artifacts (env MLPIPE_STATE_DIR; default $XDG_DATA_HOME/mlpipe)")
	pf.String("log-level", "", "debug, info, warn or error (default warn)")
	// Every command, in one place: each is a constructor that parses its
	// flags into an options struct and calls its run function.
	root.AddCommand(
		newCompileCmd(a),
		newValidateCmd(a),
		newPlanCmd(a),
		newVersionCmd(a),
		newArtifactsCmd(a),
		newBenchCmd(a),
		newBuildCmd(a),
		newDocsCmd(a),
		newLogsCmd(a),
		newRunCmd(a),
		newRunsCmd(a),
		newSubmitCmd(a),
		newGPUsCmd(a),
		newUICmd(a),
	)
	a.root = root
	return a
}

// args checks the number of positional arguments as a usage error.
func args(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) < min {
			return usagef("%s: expected at least %d argument(s), got %d", cmd.CommandPath(), min, len(a))
		}
		if max >= 0 && len(a) > max {
			return usagef("%s: expected at most %d argument(s), got %d", cmd.CommandPath(), max, len(a))
		}
		return nil
	}
}

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print mlpipe's version",
		Args:  args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(a.stdout, "mlpipe %s (KFP IR schema %s)\n", compiler.Version, kfpir.SchemaVersion)
			return nil
		},
	}
}
