package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
)

// newDocsCmd writes the CLI reference (docs/cli.md) from the commands
// themselves, so that it cannot drift from them.
func newDocsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:    "gen-docs FILE",
		Short:  "Write the command-line reference in Markdown",
		Hidden: true,
		Args:   args(1, 1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			if err := os.MkdirAll(filepath.Dir(argv[0]), 0o755); err != nil {
				return err
			}
			f, err := os.Create(argv[0])
			if err != nil {
				return err
			}
			defer f.Close()
			return writeCLIReference(f, a.root)
		},
	}
}

func writeCLIReference(w io.Writer, root *cobra.Command) error {
	fmt.Fprintln(w, "# mlpipe command-line reference")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Generated from the commands by `mlpipe gen-docs docs/cli.md`; do not edit by hand.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Exit codes: 0 success; 1 unexpected error; 2 invalid input (usage, validation, parameters); 3 the run ended with a failed task (also a benchmark regression); 130 cancelled.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Global flags")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "```")
	fmt.Fprint(w, root.PersistentFlags().FlagUsages())
	fmt.Fprintln(w, "```")
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		subs := c.Commands()
		sort.Slice(subs, func(i, j int) bool { return subs[i].Name() < subs[j].Name() })
		for _, s := range subs {
			if s.Hidden || s.Name() == "help" || s.Name() == "completion" {
				continue
			}
			fmt.Fprintf(w, "\n## %s\n\n", s.CommandPath())
			fmt.Fprintf(w, "```\n%s\n```\n\n", s.UseLine())
			long := s.Long
			if long == "" {
				long = s.Short
			}
			fmt.Fprintln(w, strings.TrimSpace(long))
			if fl := s.LocalFlags().FlagUsages(); fl != "" {
				fmt.Fprintf(w, "\nFlags:\n\n```\n%s```\n", fl)
			}
			walk(s)
		}
	}
	walk(root)
	return nil
}
