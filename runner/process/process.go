// Package process is the executor that runs each task as a host process:
// the resolved command and args in the task's directory, with its
// environment, in its own process group, stopped with SIGTERM and then
// SIGKILL when the run is cancelled, and killed as a whole by a watcher
// process when mlpipe dies first (watcher.go). The container image is
// ignored.
package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mlpipe/mlpipe/contract"
	"github.com/mlpipe/mlpipe/pyfunc"
)

// Executor runs tasks as host processes.
type Executor struct {
	// Grace is the time between SIGTERM and SIGKILL on cancel.
	Grace time.Duration
	// BaseEnv is the environment tasks start from (default: the variables
	// of mlpipe's own environment that PassEnv allows).
	BaseEnv []string
	// PassEnv adds names (or NAME_* prefixes) of mlpipe's environment that
	// steps get, to DefaultPassEnv.
	PassEnv []string
	// VenvDir holds the virtual environments of Python function
	// components (PreparePython); Python is the interpreter they are made
	// with (default python3 on the step's PATH); Pip the pip settings.
	VenvDir string
	Python  string
	Pip     pyfunc.Settings
}

// DefaultPassEnv is what a step gets from mlpipe's own environment: what
// programs need to run (PATH, HOME, locale, temporary directory), proxies,
// the CUDA toolkit's and Python's search paths. Nothing else passes: not
// mlpipe's credentials (MLPIPE_MINIO_*, MLPIPE_KFP_*), not AWS_*, not
// whatever else the user's shell holds. A step's own variables come from
// its component (env:) and from mlpipe (MLPIPE_RUN_ID, ...). The GPU
// variables (CUDA_VISIBLE_DEVICES, NVIDIA_VISIBLE_DEVICES) are never
// inherited: they are set from the step's GPU lease.
var DefaultPassEnv = []string{
	"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "LC_*", "TZ", "TERM", "TMPDIR",
	"http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
	"CUDA_HOME", "CUDA_PATH", "CUDA_CACHE_PATH", "CUDA_DEVICE_ORDER", "LD_LIBRARY_PATH",
	"PYTHONPATH", "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV",
}

// neverPass are variables no configuration passes to a step.
var neverPass = []string{"CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "MLPIPE_*", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}

// FilterEnv returns the entries of env whose names pass allowed (names, or
// prefixes written NAME_* / LC_*), minus those no setting passes.
func FilterEnv(env, allowed []string) []string {
	var out []string
	for _, kv := range env {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || !matchAny(name, allowed) || matchAny(name, neverPass) {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func matchAny(name string, patterns []string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(name, prefix) {
				return true
			}
		} else if name == p {
			return true
		}
	}
	return false
}

var _ contract.Executor = (*Executor)(nil)

// New returns a process executor.
func New(grace time.Duration) *Executor {
	if grace <= 0 {
		grace = 10 * time.Second
	}
	prestartWatcher()
	return &Executor{Grace: grace}
}

// Name implements contract.Executor.
func (e *Executor) Name() string { return "process" }

// Properties implements runner.Executor: steps run on the host, in host
// paths, and need a command.
func (e *Executor) Properties() contract.ExecutorProperties { return contract.ExecutorProperties{} }

// Run implements contract.Executor.
func (e *Executor) Run(ctx context.Context, t *contract.ExecTask) (*contract.ExecResult, error) {
	argv := append(append([]string(nil), t.Command...), t.Args...)
	if len(argv) == 0 {
		return nil, errors.New("the task has no command; the process executor cannot run an image's entrypoint")
	}
	env := append(append([]string(nil), e.baseEnv()...), t.Env...)
	if len(t.GPUs) > 0 {
		ids := strings.Join(t.GPUs, ",")
		env = append(env, "CUDA_VISIBLE_DEVICES="+ids, "CUDA_DEVICE_ORDER=PCI_BUS_ID", "NVIDIA_VISIBLE_DEVICES="+ids)
	} else {
		// A step that asked for no GPU sees none (as a pod without
		// nvidia.com/gpu), whatever mlpipe's own environment says.
		env = append(env, "CUDA_VISIBLE_DEVICES=", "NVIDIA_VISIBLE_DEVICES=void")
	}
	path, err := lookPath(argv[0], env)
	if err != nil {
		return nil, err
	}
	cmd := &exec.Cmd{Path: path, Args: argv, Dir: t.Dir, Env: env, Stdout: t.Stdout, Stderr: t.Stderr}
	if f := devNull(); f != nil {
		cmd.Stdin = f
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if t.GPULease != nil {
		// The step inherits the GPU lock files: its leases live as long as
		// it does, even if mlpipe dies first.
		for _, f := range t.GPULease.Files() {
			if of, ok := f.(*os.File); ok {
				cmd.ExtraFiles = append(cmd.ExtraFiles, of)
			}
		}
	}
	start := time.Now()
	// The watcher kills the whole group if mlpipe dies first (watcher.go).
	w := watchStart(t.RunID)
	if err := cmd.Start(); err != nil {
		w.done()
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	w.started(cmd.Process.Pid)
	if t.Started != nil {
		t.Started(fmt.Sprintf("pid:%d", cmd.Process.Pid))
	}
	waitDone := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			pgid := cmd.Process.Pid
			_ = syscall.Kill(-pgid, syscall.SIGTERM)
			select {
			case <-waitDone:
			case <-time.After(e.Grace):
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
			}
		case <-waitDone:
		}
	}()
	err = cmd.Wait()
	close(waitDone)
	// Whatever the leader did, leave no process of the group behind.
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	w.done()
	if t.Phase != nil {
		t.Phase("execute", start, time.Now())
	}
	res := &contract.ExecResult{}
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return nil, err
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.ExitCode = 128 + int(ws.Signal())
			res.Signal = ws.Signal().String()
		} else {
			res.ExitCode = ee.ExitCode()
		}
	}
	return res, nil
}

// devNull is the steps' standard input, opened once: exec.Cmd would open
// /dev/null for every step.
var devNull = sync.OnceValue(func() *os.File {
	f, err := os.Open(os.DevNull)
	if err != nil {
		return nil
	}
	return f
})

var (
	pathMu    sync.Mutex
	pathCache = map[string]string{}
)

// lookPath resolves a command with the task's PATH (results are cached:
// filesystem lookups are slow on some machines and tasks repeat commands).
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	pathEnv := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	key := name + "\x00" + pathEnv
	pathMu.Lock()
	p, ok := pathCache[key]
	pathMu.Unlock()
	if ok {
		return p, nil
	}
	p, err := findInPath(name, pathEnv)
	if err == nil {
		pathMu.Lock()
		pathCache[key] = p
		pathMu.Unlock()
	}
	return p, err
}

func findInPath(name, pathEnv string) (string, error) {
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %q not found in PATH (the process executor runs commands on this machine; is it installed?)", name)
}
