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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mlpipe/mlpipe/runner/process"
)

func main() {
	// Started as the watcher of process steps (runner/process/watcher.go),
	// mlpipe does that and nothing else.
	process.ServeWatcher()
	// MLPIPE_CPUPROFILE=FILE writes a CPU profile, MLPIPE_MEMPROFILE=FILE
	// the heap's peak allocations at exit (for mlpipe's developers).
	if f := os.Getenv("MLPIPE_CPUPROFILE"); f != "" {
		if out, err := os.Create(f); err == nil {
			if pprof.StartCPUProfile(out) == nil {
				code := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
				pprof.StopCPUProfile()
				out.Close()
				writeMemProfile()
				os.Exit(code)
			}
		}
	}
	code := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	writeMemProfile()
	os.Exit(code)
}

func writeMemProfile() {
	f := os.Getenv("MLPIPE_MEMPROFILE")
	if f == "" {
		return
	}
	if out, err := os.Create(f); err == nil {
		_ = pprof.Lookup("allocs").WriteTo(out, 0)
		out.Close()
	}
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
			switch n {
			case 1:
				fmt.Fprintln(stderr, "\nmlpipe: cancelling (press Ctrl-C again to force)")
				cancel(errInterrupted)
			case 2:
				// Forced: what must not outlive mlpipe is removed at once
				// (containers, by force), then mlpipe exits; a third
				// Ctrl-C does not wait for that. Process steps die with
				// mlpipe (their watcher); the history shows the tasks
				// CANCELED from the next command on.
				fmt.Fprintln(stderr, "mlpipe: forced exit")
				forcedExit.started.Store(true)
				go func() {
					runForcedExitHooks(forcedExitTimeout)
					os.Exit(130)
				}()
			default:
				os.Exit(130)
			}
		}
	}()
	app := newApp(stdin, stdout, stderr)
	app.root.SetArgs(args)
	err := app.root.ExecuteContext(ctx)
	code := exitCode(err, stderr)
	if forcedExit.started.Load() {
		// The forced exit's clean-up ends the process.
		select {}
	}
	return code
}

var errInterrupted = errors.New("interrupted")

// forcedExitTimeout bounds the clean-up of a forced exit.
const forcedExitTimeout = 10 * time.Second

var forcedExit struct {
	mu      sync.Mutex
	hooks   []func(context.Context)
	started atomic.Bool
}

// onForcedExit registers what a forced exit (a second Ctrl-C) does before
// mlpipe exits.
func onForcedExit(f func(context.Context)) {
	forcedExit.mu.Lock()
	defer forcedExit.mu.Unlock()
	forcedExit.hooks = append(forcedExit.hooks, f)
}

// runForcedExitHooks runs the hooks at once, in parallel, for at most d.
func runForcedExitHooks(d time.Duration) {
	forcedExit.mu.Lock()
	hooks := append([]func(context.Context){}, forcedExit.hooks...)
	forcedExit.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for _, f := range hooks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

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
