// Command mlpipe compiles, runs, submits and benchmarks Kubeflow Pipelines.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

func main() {
	// MLPIPE_CPUPROFILE=FILE writes a CPU profile (for mlpipe's developers).
	if f := os.Getenv("MLPIPE_CPUPROFILE"); f != "" {
		if out, err := os.Create(f); err == nil {
			if pprof.StartCPUProfile(out) == nil {
				code := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
				pprof.StopCPUProfile()
				out.Close()
				os.Exit(code)
			}
		}
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the command line and maps the outcome to an exit code. It is
// the only place that decides exit codes and prints final errors.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		n := 0
		for range sigs {
			n++
			if n == 1 {
				fmt.Fprintln(stderr, "\nmlpipe: cancelling (press Ctrl-C again to force)")
				cancel(errInterrupted)
				continue
			}
			fmt.Fprintln(stderr, "mlpipe: forced exit")
			os.Exit(130)
		}
	}()
	app := newApp(stdin, stdout, stderr)
	app.root.SetArgs(args)
	err := app.root.ExecuteContext(ctx)
	return exitCode(err, stderr)
}

var errInterrupted = errors.New("interrupted")

// exitCoder is implemented by errors that carry their own exit code (a run
// that ended with a failed task: 3; a cancelled run: 130).
type exitCoder interface{ ExitCode() int }

// invalidInput is implemented by errors caused by the user's input.
type invalidInput interface{ InvalidInput() bool }

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var ec exitCoder
	if errors.As(err, &ec) {
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(stderr, "mlpipe:", msg)
		}
		return ec.ExitCode()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, errInterrupted) {
		fmt.Fprintln(stderr, "mlpipe: cancelled")
		return 130
	}
	var ii invalidInput
	if errors.As(err, &ii) && ii.InvalidInput() {
		fmt.Fprintln(stderr, err.Error())
		return 2
	}
	fmt.Fprintln(stderr, "mlpipe:", err)
	return 1
}

// usageError is a bad command line.
type usageError struct{ err error }

func (e usageError) Error() string      { return e.err.Error() + "\nRun with --help for usage." }
func (e usageError) Unwrap() error      { return e.err }
func (e usageError) InvalidInput() bool { return true }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}
