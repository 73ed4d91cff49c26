package process

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/mlpipe/mlpipe/contract"
	"github.com/mlpipe/mlpipe/pyfunc"
)

// venvVersion enters the key of a virtual environment: a change to how
// they are made makes them again.
const venvVersion = "1"

// venvComplete marks a virtual environment whose installs all succeeded.
const venvComplete = ".mlpipe-complete"

var _ contract.PythonPreparer = (*Executor)(nil)

// PreparePython implements contract.PythonPreparer: one virtual
// environment per (python, installs, pip settings) under VenvDir, made
// with --system-site-packages (as the SDK's use_venv does: the host's
// packages stay visible) and the component's pip installs, and reused by
// every later step and run. The step gets it first on its PATH, so its
// own pip prologue finds every requirement satisfied in the environment:
// mlpipe never pip-installs into the user's own Python.
func (e *Executor) PreparePython(ctx context.Context, req contract.PythonRequest, log io.Writer) (contract.PythonEnv, error) {
	if log == nil {
		log = io.Discard
	}
	if e.VenvDir == "" {
		return contract.PythonEnv{}, errors.New("no directory for virtual environments (process executor VenvDir)")
	}
	env := e.baseEnv()
	python, err := lookPath(cmp.Or(e.Python, "python3"), env)
	if err != nil {
		return contract.PythonEnv{}, fmt.Errorf("component %s is a Python function component: %w", req.Component, err)
	}
	dir, err := e.venvPath(ctx, python, req)
	if err != nil {
		return contract.PythonEnv{}, err
	}
	out := contract.PythonEnv{
		Env: []string{"VIRTUAL_ENV=" + dir, "PATH=" + filepath.Join(dir, "bin") + string(os.PathListSeparator) + envValue(env, "PATH")},
		Ref: dir,
	}
	if err := os.MkdirAll(e.VenvDir, 0o755); err != nil {
		return out, fmt.Errorf("virtual environments: %w", err)
	}
	// One process makes an environment; the others wait for it.
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return out, fmt.Errorf("virtual environment %s: %w", dir, err)
	}
	defer lock.Close()
	if err := flockCtx(ctx, lock); err != nil {
		return out, err
	}
	if _, err := os.Stat(filepath.Join(dir, venvComplete)); err == nil {
		return out, nil
	}
	if err := os.RemoveAll(dir); err != nil { // a half-made one
		return out, err
	}
	fmt.Fprintf(log, "making the virtual environment %s for %s: pip install %s\n", dir, req.Component, pyfunc.Display(req.Packages))
	var pipOut bytes.Buffer
	w := io.MultiWriter(log, &pipOut)
	run := func(name string, args ...string) error {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = append(append([]string{}, env...), e.Pip.Environ(absOr(e.Pip.ConfigFile))...)
		cmd.Stdout, cmd.Stderr = w, w
		cmd.WaitDelay = e.Grace
		return cmd.Run()
	}
	if err := run(python, "-m", "venv", "--system-site-packages", dir); err != nil {
		_ = os.RemoveAll(dir)
		return out, fmt.Errorf("component %s: %s -m venv %s: %w\n%s", req.Component, python, dir, ctxOr(ctx, err), lastLines(pipOut.Bytes(), 5))
	}
	for _, args := range req.Installs {
		if err := run(filepath.Join(dir, "bin", "python"), append([]string{"-m", "pip", "install", "--no-warn-script-location"}, args...)...); err != nil {
			_ = os.RemoveAll(dir)
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			return out, pyfunc.InstallError(req.Component, req.Packages, pyfunc.IndexesOf(req.Installs), pipOut.Bytes(), err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, venvComplete), []byte(req.Key), 0o644); err != nil {
		return out, err
	}
	out.Built = true
	return out, nil
}

// venvPath returns the directory of the environment for req made with
// python: its key covers the interpreter (resolved path and version),
// the installs and the pip settings.
func (e *Executor) venvPath(ctx context.Context, python string, req contract.PythonRequest) (string, error) {
	real, err := filepath.EvalSymlinks(python)
	if err != nil {
		real = python
	}
	version, err := exec.CommandContext(ctx, python, "-c", "import sys; print(sys.version)").Output()
	if err != nil {
		return "", fmt.Errorf("component %s is a Python function component, and %s does not run: %w", req.Component, python, ctxOr(ctx, err))
	}
	settings, err := e.Pip.Digest()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "mlpipe venv %s\npython %s %s\nsettings %s\n%s", venvVersion, real, bytes.TrimSpace(version), settings, req.Key)
	return filepath.Join(e.VenvDir, hex.EncodeToString(h.Sum(nil))[:16]), nil
}

// baseEnv is the environment steps start from.
func (e *Executor) baseEnv() []string {
	if e.BaseEnv != nil {
		return e.BaseEnv
	}
	return FilterEnv(os.Environ(), append(append([]string(nil), DefaultPassEnv...), e.PassEnv...))
}

// flockCtx takes an exclusive lock on f, giving up when ctx ends.
func flockCtx(ctx context.Context, f *os.File) error {
	done := make(chan error, 1)
	go func() { done <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// Closing the file (the caller's defer) releases a lock taken late.
		return ctx.Err()
	}
}

func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

func absOr(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// lastLines returns the last n lines of b.
func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// PythonPrepared reports whether the virtual environment for req exists,
// and its directory (for mlpipe plan).
func (e *Executor) PythonPrepared(ctx context.Context, req contract.PythonRequest) (string, bool, error) {
	python, err := lookPath(cmp.Or(e.Python, "python3"), e.baseEnv())
	if err != nil {
		return "", false, err
	}
	dir, err := e.venvPath(ctx, python, req)
	if err != nil {
		return "", false, err
	}
	_, err = os.Stat(filepath.Join(dir, venvComplete))
	return dir, err == nil, nil
}
