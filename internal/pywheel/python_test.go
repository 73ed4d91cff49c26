package pywheel

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests need a host Python 3 with venv and ensurepip. Without one
// they skip, unless MLPIPE_REQUIRE_PYTHON=1 makes that a failure.
// MLPIPE_PYTHON names the interpreter (default python3).

const testKFPVersion = "2.7.0"

func hostPython(t *testing.T) string {
	t.Helper()
	if testing.Short() && os.Getenv("MLPIPE_REQUIRE_PYTHON") != "1" {
		t.Skip("creates Python virtual environments; skipped with -short")
	}
	py := os.Getenv("MLPIPE_PYTHON")
	if py == "" {
		py = "python3"
	}
	unavailable := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("MLPIPE_REQUIRE_PYTHON") == "1" {
			t.Fatalf("MLPIPE_REQUIRE_PYTHON=1 but %s", msg)
		}
		t.Skipf("%s (set MLPIPE_REQUIRE_PYTHON=1 to make this a failure)", msg)
	}
	path, err := exec.LookPath(py)
	if err != nil {
		unavailable("no Python interpreter %q: %v", py, err)
	}
	out, err := exec.Command(path, "-c", "import sys, venv, ensurepip; assert sys.version_info >= (3, 9), sys.version").CombinedOutput()
	if err != nil {
		unavailable("%s cannot create virtual environments with pip (python3 -m venv unavailable): %v\n%s", path, err, out)
	}
	return path
}

// pyEnv is the environment for commands run in venv: venv/bin first on
// PATH, no user pip configuration, cache or proxies, no network lookups by
// pip besides the index it is given.
func pyEnv(venv, tmp string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		uk := strings.ToUpper(k)
		if strings.HasPrefix(uk, "PIP_") || strings.HasPrefix(uk, "PYTHON") || strings.HasSuffix(uk, "_PROXY") ||
			uk == "VIRTUAL_ENV" || uk == "PATH" || uk == "TMPDIR" {
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"PATH="+filepath.Join(venv, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"),
		"VIRTUAL_ENV="+venv, "TMPDIR="+tmp, "NO_PROXY=*", "no_proxy=*",
		"PIP_CONFIG_FILE="+os.DevNull, "PIP_NO_CACHE_DIR=1", "PIP_NO_INPUT=1",
		"PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_REQUIRE_VIRTUALENV=1", "PYTHONDONTWRITEBYTECODE=1")
}

type pyRun struct {
	t          *testing.T
	venv, tmp  string
	env        []string
	stdout     string
	stderr     string
	exitStatus error
}

func newVenv(t *testing.T) *pyRun {
	t.Helper()
	py := hostPython(t)
	base := t.TempDir()
	r := &pyRun{t: t, venv: filepath.Join(base, "venv"), tmp: filepath.Join(base, "tmp")}
	if err := os.Mkdir(r.tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	r.env = pyEnv(r.venv, r.tmp)
	if err := r.run(py, "-m", "venv", r.venv); err != nil || !fileExists(filepath.Join(r.venv, "bin", "pip")) {
		t.Fatalf("%s -m venv: %v\n%s%s", py, err, r.stdout, r.stderr)
	}
	return r
}

// run runs a command in the venv environment and records its output.
func (r *pyRun) run(name string, args ...string) error {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.t.Context(), 4*time.Minute)
	defer cancel()
	// Resolve python3, pip, ... in the venv: exec.Command looks names up in
	// this process's PATH, not in cmd.Env's, and must never reach the host's.
	if !strings.Contains(name, "/") {
		if p := filepath.Join(r.venv, "bin", name); fileExists(p) {
			name = p
		} else if name != "sh" {
			r.t.Fatalf("%s is not in the venv %s", name, r.venv)
		}
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = r.env
	cmd.Dir = r.tmp
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r.stdout, r.stderr = stdout.String(), stderr.String()
	return err
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func (r *pyRun) mustRun(name string, args ...string) {
	r.t.Helper()
	if err := r.run(name, args...); err != nil {
		r.t.Fatalf("%s %q: %v\nstdout:\n%s\nstderr:\n%s", name, args, err, r.stdout, r.stderr)
	}
}

// writeWheels writes the kfp stand-in and mlpipe-testpkg into a new dir.
func writeWheels(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []Package{KFP(testKFPVersion), testPackage()} {
		if _, err := Write(dir, p); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// runComponent runs c's command and args (with {{$}} = executorInput)
// the way a container runtime would: command[0] with the rest as argv.
func (r *pyRun) runComponent(c Component, executorInput any) error {
	r.t.Helper()
	in, err := json.Marshal(executorInput)
	if err != nil {
		r.t.Fatal(err)
	}
	argv := append(c.Command(), c.Args()...)
	for i, a := range argv {
		argv[i] = strings.ReplaceAll(a, "{{$}}", string(in))
	}
	return r.run(argv[0], argv[1:]...)
}

func readJSON(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("executor output: %v", err)
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("executor output %s: %v\n%s", path, err, data)
	}
	return v
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func artifact(name, schema, uri string, metadata map[string]any) map[string]any {
	a := map[string]any{"name": name, "uri": uri, "metadata": metadata}
	if schema != "" {
		a["type"] = map[string]any{"schemaTitle": schema, "schemaVersion": "0.0.1"}
	}
	return map[string]any{"artifacts": []any{a}}
}

// jsonValue round-trips v through JSON so it compares with decoded output.
func jsonValue(t *testing.T, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestComponentFindLinks(t *testing.T) {
	r := newVenv(t)
	wheels := writeWheels(t)
	r.mustRun("pip", "install", "--no-index", "--find-links", wheels, "kfp=="+testKFPVersion, "mlpipe-testpkg")

	t.Run("uri_mapping", func(t *testing.T) {
		r.t = t
		r.mustRun("python3", "-c", readTestdata(t, "uri_mapping.py"))
		if strings.TrimSpace(r.stdout) != "ok" {
			t.Errorf("stdout = %q, want ok", r.stdout)
		}
	})
	for _, tc := range componentCases() {
		t.Run(tc.function, func(t *testing.T) {
			r.t = t
			root := t.TempDir()
			in := tc.setup(t, root)
			c := Component{FuncSource: readTestdata(t, tc.file), Function: tc.function}
			if err := r.runComponent(c, in); err != nil && tc.function != "boom" {
				t.Fatalf("component %s: %v\nstdout:\n%s\nstderr:\n%s", tc.function, err, r.stdout, r.stderr)
			} else if err == nil && tc.function == "boom" {
				t.Fatalf("component boom succeeded, want a failure")
			}
			tc.check(t, r, root)
		})
	}
}

// TestComponentIndexURL serves WriteIndex's layout over HTTP and runs the
// full SDK command, whose prologue pip-installs kfp and the component's
// packages with --index-url http://127.0.0.1:PORT/simple into a bare venv.
func TestComponentIndexURL(t *testing.T) {
	r := newVenv(t)
	wheels := writeWheels(t)
	if err := WriteIndex(wheels); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var requests []string
	fileServer := http.FileServer(http.Dir(wheels))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		requests = append(requests, req.URL.Path)
		mu.Unlock()
		fileServer.ServeHTTP(w, req)
	}))
	defer srv.Close()

	root := t.TempDir()
	tc := componentCases()[0] // train: imports mlpipe_testpkg and kfp
	c := Component{
		FuncSource:   readTestdata(t, tc.file),
		Function:     tc.function,
		KFPVersion:   testKFPVersion,
		Packages:     []string{"mlpipe-testpkg==1.0.0"},
		PipIndexURLs: []string{srv.URL + "/simple"},
		// Not the SDK default "--trusted-host <index URL>": pip cannot parse
		// a URL with a port there (127.0.0.1 is a secure origin anyway).
		PipTrustedHosts: []string{},
	}
	if len(c.Command()) != 7 {
		t.Fatalf("SDK-shaped command has %d elements, want 7", len(c.Command()))
	}
	if err := r.runComponent(c, tc.setup(t, root)); err != nil {
		t.Fatalf("component: %v\nstdout:\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	tc.check(t, r, root)

	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"/simple/kfp/", "/simple/mlpipe-testpkg/",
		"/" + WheelFilename(KFP(testKFPVersion)), "/" + WheelFilename(testPackage())} {
		found := false
		for _, got := range requests {
			found = found || got == want
		}
		if !found {
			t.Errorf("pip never requested %s; requests: %q", want, requests)
		}
	}
}
