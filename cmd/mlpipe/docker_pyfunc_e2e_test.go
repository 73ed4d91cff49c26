//go:build docker

package main

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mlpipe/mlpipe/internal/pywheel"
)

// TestPythonFunctionComponentsDocker runs KFP Python function components
// (testdata/pyfunc.yaml, the SDK's compiled shape) in containers: the first
// run derives one image per (base image, packages) from the locally made
// Python image, offline from a wheel directory; the second run derives
// nothing and its steps' own pip prologue installs nothing (there is no
// index to reach: it would fail). The pip settings, which may hold tokens,
// are in no image.
func TestPythonFunctionComponentsDocker(t *testing.T) {
	c, _ := dockerCLI(t)
	if out, err := exec.Command(filepath.Join(c.dir, "scripts", "base-images.sh"), "python").CombinedOutput(); err != nil {
		t.Fatalf("scripts/base-images.sh python: %v\n%s", err, out)
	}
	pyWheels(t, c)
	const token = "tok3n-never-stored"
	c.env = append(c.env, "PIP_EXTRA_INDEX_URL=http://user:"+token+"@127.0.0.1:9/simple")

	first := c.mustRun("run", "cmd/mlpipe/testdata/pyfunc.yaml")
	out := first.stdout + first.stderr
	tags := regexp.MustCompile(`derived (mlpipe/pyfunc:[0-9a-f]{16})`).FindAllStringSubmatch(out, -1)
	if len(tags) != 2 {
		t.Fatalf("first run derived %d images, want 2:\n%s", len(tags), out)
	}
	if strings.Contains(out, token) {
		t.Errorf("the run's output shows the index token:\n%s", out)
	}
	s := c.show("latest")
	for _, tk := range s.Tasks {
		if tk.Name == "use-pkg" && tk.Outputs.Parameters["Output"] != float64(45) {
			t.Errorf("use-pkg Output = %v, want 45", tk.Outputs.Parameters["Output"])
		}
	}
	for _, m := range tags {
		b, err := exec.Command("docker", "image", "inspect", m[1]).CombinedOutput()
		h, err2 := exec.Command("docker", "history", "--no-trunc", m[1]).CombinedOutput()
		if err != nil || err2 != nil {
			t.Fatalf("inspect %s: %v %v\n%s", m[1], err, err2, b)
		}
		if strings.Contains(string(b)+string(h), token) || strings.Contains(string(b)+string(h), "PIP_EXTRA_INDEX_URL") {
			t.Errorf("image %s holds the pip settings:\n%s\n%s", m[1], b, h)
		}
	}

	second := c.mustRun("run", "cmd/mlpipe/testdata/pyfunc.yaml", "--no-cache")
	if strings.Contains(second.stdout+second.stderr, "deriving") {
		t.Errorf("the second run derived an image again:\n%s%s", second.stdout, second.stderr)
	}
	build := c.mustRun("build", "cmd/mlpipe/testdata/pyfunc.yaml").stdout
	for _, m := range tags {
		if !strings.Contains(build, m[1]+" up to date") {
			t.Errorf("mlpipe build does not say %s is up to date:\n%s", m[1], build)
		}
	}
	plan := c.mustRun("plan", "cmd/mlpipe/testdata/pyfunc.yaml").stdout
	if !strings.Contains(plan, "python: kfp==2.7.0 mlpipe-testpkg (+1 conditional); installed in mlpipe/pyfunc:") {
		t.Errorf("plan:\n%s", plan)
	}

	// Results stay cached when the derived images are removed (docker
	// image prune): the cache key names the image by its base image and
	// installs, and a task served from the cache makes nothing.
	for _, m := range tags {
		if out, err := exec.Command("docker", "rmi", m[1]).CombinedOutput(); err != nil {
			t.Fatalf("docker rmi %s: %v\n%s", m[1], err, out)
		}
	}
	third := c.mustRun("run", "cmd/mlpipe/testdata/pyfunc.yaml")
	if strings.Contains(third.stdout+third.stderr, "deriv") {
		t.Errorf("a run served from the cache derived an image:\n%s%s", third.stdout, third.stderr)
	}
	for _, tk := range c.show("latest").Tasks {
		if tk.State != "CACHED" {
			t.Errorf("after the derived images were removed, %s is %s, want CACHED", tk.Name, tk.State)
		}
	}
	for _, m := range tags {
		if exec.Command("docker", "image", "inspect", m[1]).Run() == nil {
			t.Errorf("a run served from the cache made %s again", m[1])
		}
	}
	// Without the cache they are made again, under the same names.
	fourth := c.mustRun("run", "cmd/mlpipe/testdata/pyfunc.yaml", "--no-cache")
	if got := regexp.MustCompile(`derived (mlpipe/pyfunc:[0-9a-f]{16})`).FindAllStringSubmatch(fourth.stdout+fourth.stderr, -1); !cmp.Equal(got, tags) {
		t.Errorf("a run without the cache derived %v, want %v", got, tags)
	}
}

// TestPythonFunctionComponentsPrivateIndex: packages come from a private
// index on localhost that wants a password (in PIP_INDEX_URL, as users
// write it); the image of a component that adds one package to another's
// takes the others from mlpipe's pip cache, not from the index again; the
// password is in no image.
func TestPythonFunctionComponentsPrivateIndex(t *testing.T) {
	c, _ := dockerCLI(t)
	if out, err := exec.Command(filepath.Join(c.dir, "scripts", "base-images.sh"), "python").CombinedOutput(); err != nil {
		t.Fatalf("scripts/base-images.sh python: %v\n%s", err, out)
	}
	dir := t.TempDir()
	for _, p := range []pywheel.Package{pywheel.KFP("2.7.0"),
		{Name: "mlpipe-testpkg", Version: "1.0.0", Files: map[string][]byte{"mlpipe_testpkg/__init__.py": []byte("def answer():\n    return 42\n")}},
		{Name: "mlpipe-extra", Version: "1.0.0", Files: map[string][]byte{"mlpipe_extra/__init__.py": []byte("X = 1\n")}},
	} {
		if _, err := pywheel.Write(dir, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := pywheel.WriteIndex(dir); err != nil {
		t.Fatal(err)
	}
	const password = "s3cret-index-password"
	var mu sync.Mutex
	wheels := map[string]int{}
	files := http.FileServer(http.Dir(dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "ci" || p != password {
			w.Header().Set("WWW-Authenticate", `Basic realm="index"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if strings.HasSuffix(r.URL.Path, ".whl") {
			w.Header().Set("Cache-Control", "max-age=365000000, immutable, public") // as PyPI serves files
			mu.Lock()
			wheels[filepath.Base(r.URL.Path)]++
			mu.Unlock()
		}
		files.ServeHTTP(w, r)
	}))
	defer srv.Close()
	// A plain-http index must be a trusted host (pip caches nothing from
	// other http hosts); https indexes need nothing.
	c.env = append(c.env, "PIP_INDEX_URL="+strings.Replace(srv.URL, "http://", "http://ci:"+password+"@", 1)+"/simple", "PIP_TRUSTED_HOST=127.0.0.1")

	b, err := os.ReadFile(filepath.Join(c.dir, "cmd/mlpipe/testdata/pyfunc.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// A different kfp pin than the other tests' images: nothing derived
	// before can serve this run.
	ir := filepath.Join(t.TempDir(), "index.yaml")
	src := strings.ReplaceAll(string(b), "'mlpipe-testpkg'", "'mlpipe-testpkg' 'mlpipe-extra'")
	src = strings.ReplaceAll(src, "python3 -m pip install --quiet --no-warn-script-location 'kfp==2.7.0'", "python3 -m pip install --quiet --no-warn-script-location 'kfp==2.7.0' '--pre'")
	if err := os.WriteFile(ir, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	r := c.mustRun("run", ir)
	out := r.stdout + r.stderr
	if strings.Contains(out, password) {
		t.Errorf("the output shows the index password:\n%s", out)
	}
	mu.Lock()
	got := maps.Clone(wheels)
	mu.Unlock()
	// comp-add installs kfp; comp-use-pkg kfp, mlpipe-testpkg and
	// mlpipe-extra: kfp once from the index, then from the cache.
	want := map[string]int{"kfp-2.7.0-py3-none-any.whl": 1, "mlpipe_testpkg-1.0.0-py3-none-any.whl": 1, "mlpipe_extra-1.0.0-py3-none-any.whl": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("wheels downloaded from the index (-want +got):\n%s\n%s", diff, out)
	}
	for _, m := range regexp.MustCompile(`derived (mlpipe/pyfunc:[0-9a-f]{16})`).FindAllStringSubmatch(out, -1) {
		b, _ := exec.Command("docker", "image", "inspect", m[1]).CombinedOutput()
		h, _ := exec.Command("docker", "history", "--no-trunc", m[1]).CombinedOutput()
		if strings.Contains(string(b)+string(h), password) {
			t.Errorf("image %s holds the index password", m[1])
		}
	}
}
