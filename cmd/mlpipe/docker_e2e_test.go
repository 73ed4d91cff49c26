//go:build docker

package main

// End-to-end tests of the Docker executor through the CLI, against the
// daemon DOCKER_HOST names. Without a daemon they skip, unless
// MLPIPE_REQUIRE_DOCKER=1 (CI), where they fail. They make their base
// images with scripts/base-images.sh (busybox only, no registry needed).

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/mlpipe/mlpipe/kfp/kfptest"
)

var dockerBase struct {
	sync.Once
	err error
	out []byte
}

// dockerCLI returns a CLI whose runs use the Docker executor, and a client
// of the same daemon; it skips without a daemon (fails under
// MLPIPE_REQUIRE_DOCKER=1).
func dockerCLI(t *testing.T) (*cli, *client.Client) {
	t.Helper()
	dc, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		_, err = dc.Ping(ctx)
		cancel()
	}
	if err != nil {
		if os.Getenv("MLPIPE_REQUIRE_DOCKER") == "1" {
			t.Fatalf("Docker is required (MLPIPE_REQUIRE_DOCKER=1): %v", err)
		}
		t.Skipf("no Docker daemon: %v", err)
	}
	t.Cleanup(func() { dc.Close() })
	c := newCLI(t)
	dockerBase.Do(func() {
		dockerBase.out, dockerBase.err = exec.Command(filepath.Join(c.dir, "scripts", "base-images.sh")).CombinedOutput()
	})
	if dockerBase.err != nil {
		t.Fatalf("scripts/base-images.sh: %v\n%s", dockerBase.err, dockerBase.out)
	}
	c.env = append(c.env, "MLPIPE_EXECUTOR=docker")
	return c, dc
}

// runContainers lists the containers, running or not, of a run.
func runContainers(t *testing.T, dc *client.Client, runID string) []container.Summary {
	t.Helper()
	list, err := dc.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "mlpipe.run="+runID))})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// removeImages removes the images of a repository, every tag.
func removeImages(dc *client.Client, repo string) {
	ctx := context.Background()
	list, err := dc.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(filters.Arg("reference", repo))})
	if err != nil {
		return
	}
	for _, im := range list {
		dc.ImageRemove(ctx, im.ID, image.RemoveOptions{Force: true, PruneChildren: true})
	}
}

func TestDockerQuickstart(t *testing.T) {
	c, dc := dockerCLI(t)
	r, last := c.runJSON("pipelines/quickstart", "-p", "who=docker", "-p", "repeat=4")
	if r.code != 0 || last["state"] != "SUCCEEDED" {
		t.Fatalf("exit %d, final %v\nstderr: %s", r.code, last, r.stderr)
	}
	runID := last["run_id"].(string)
	s := c.show(runID)
	byName := map[string]int{}
	for i, tk := range s.Tasks {
		byName[tk.Name] = i
	}
	if got := s.Tasks[byName["count"]].Outputs.Parameters["lines"]; got != float64(4) {
		t.Errorf("count.lines = %v, want 4", got)
	}
	if got := s.Tasks[byName["greet"]].Outputs.Parameters["greeting"]; got != "hello, docker" {
		t.Errorf("greet.greeting = %v", got)
	}
	data := s.Tasks[byName["write"]].Outputs.Artifacts["data"]
	if len(data) != 1 {
		t.Fatalf("write.data = %v", data)
	}
	b, err := os.ReadFile(data[0].URI)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("hello, docker\n", 4); string(b) != want {
		t.Errorf("artifact %q, want %q", b, want)
	}
	// What the containers wrote belongs to the user who ran mlpipe.
	filepath.Walk(filepath.Dir(filepath.Dir(data[0].URI)), func(p string, info os.FileInfo, err error) error {
		if err == nil {
			if uid := info.Sys().(*syscall.Stat_t).Uid; int(uid) != os.Getuid() {
				t.Errorf("%s belongs to uid %d, want %d", p, uid, os.Getuid())
			}
		}
		return nil
	})
	if logs := c.mustRun("logs", runID, "count").stdout; !strings.Contains(logs, "Lines written for docker: 4 lines") {
		t.Errorf("count's log: %q", logs)
	}
	if left := runContainers(t, dc, runID); len(left) != 0 {
		t.Errorf("%d containers left after the run", len(left))
	}
}

const msgComponent = `name: show-msg
outputs:
- {name: msg, type: String}
implementation:
  container:
    image: mlpipe-test/e2e-msg:dev
    command: [sh, -ec, 'mkdir -p "$(dirname "$0")"; cat /msg.txt > "$0"; echo "shown: $(cat /msg.txt)"']
    args: [{outputPath: msg}]
`

func TestDockerBuildAndImageInCacheKey(t *testing.T) {
	c, dc := dockerCLI(t)
	t.Cleanup(func() { removeImages(dc, "mlpipe-test/e2e-msg") })
	removeImages(dc, "mlpipe-test/e2e-msg")
	dir := writeFiles(t, map[string]string{
		"pipeline.yaml":       "name: image-cache\ntasks:\n  show: {component: comp}\n",
		"comp/component.yaml": msgComponent,
		// The default base cannot be pulled here: only the build argument
		// makes it build, and runs must rebuild with the same argument.
		"comp/Dockerfile": "ARG BASE=mlpipe-test/not-pullable:1\nFROM ${BASE}\nCOPY msg.txt /msg.txt\n",
		"comp/msg.txt":    "one",
	})
	comp := filepath.Join(dir, "comp")

	r := c.mustRun("build", comp, "--build-arg", "BASE=mlpipe/busybox:latest")
	if !strings.Contains(r.stdout, "mlpipe-test/e2e-msg:dev") || !strings.Contains(r.stdout, " built ") {
		t.Errorf("first build: %q", r.stdout)
	}
	if r = c.mustRun("build", comp, "--build-arg", "BASE=mlpipe/busybox:latest"); !strings.Contains(r.stdout, " up to date ") {
		t.Errorf("second build: %q", r.stdout)
	}

	run := func(want string) string {
		t.Helper()
		r, last := c.runJSON(dir)
		if r.code != 0 {
			t.Fatalf("exit %d\nstderr: %s", r.code, r.stderr)
		}
		s := c.show(last["run_id"].(string))
		tk := s.Tasks[0]
		if tk.Outputs.Parameters["msg"] != want {
			t.Errorf("msg = %v, want %q", tk.Outputs.Parameters["msg"], want)
		}
		return tk.State
	}
	if st := run("one"); st != "SUCCEEDED" {
		t.Errorf("first run: %s", st)
	}
	if st := run("one"); st != "CACHED" {
		t.Errorf("same image: %s, want CACHED", st)
	}
	// mlpipe run rebuilds the changed component (with the build arguments
	// of its last build); the new image ID changes the cache key, so the
	// task runs again.
	if err := os.WriteFile(filepath.Join(comp, "msg.txt"), []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st := run("two"); st != "SUCCEEDED" {
		t.Errorf("rebuilt image: %s, want SUCCEEDED (not served from the cache)", st)
	}
	if st := run("two"); st != "CACHED" {
		t.Errorf("rebuilt image, second run: %s, want CACHED", st)
	}
}

func TestDockerFailingStep(t *testing.T) {
	c, dc := dockerCLI(t)
	dir := writeFiles(t, map[string]string{
		"pipeline.yaml": "name: docker-fail\ntasks:\n  boom: {component: boom.yaml}\n",
		"boom.yaml":     "name: boom\nimplementation:\n  container:\n    image: busybox:1.36\n    command: [sh, -c, 'echo about to fail >&2; exit 7']\n",
	})
	r := c.run("run", dir, "--run-id", "docker-fail")
	if r.code != 3 {
		t.Fatalf("exit %d, want 3\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout+r.stderr, "exit code 7") {
		t.Errorf("the exit code is not reported:\n%s%s", r.stdout, r.stderr)
	}
	if logs := c.mustRun("logs", "docker-fail", "boom").stdout; !strings.Contains(logs, "about to fail") {
		t.Errorf("boom's log: %q", logs)
	}
	if left := runContainers(t, dc, "docker-fail"); len(left) != 0 {
		t.Errorf("%d containers left", len(left))
	}
}

func TestDockerCtrlCRemovesContainers(t *testing.T) {
	c, dc := dockerCLI(t)
	dir := writeFiles(t, map[string]string{
		"pipeline.yaml": "name: docker-cancel\ntasks:\n  long: {component: sleep.yaml}\n  other: {component: sleep.yaml}\n",
		"sleep.yaml":    "name: sleep\nimplementation:\n  container:\n    image: busybox:1.36\n    command: [sleep, '300']\n",
	})
	runID := fmt.Sprintf("docker-cancel-%d", time.Now().UnixNano())
	cmd := exec.Command(mlpipeBin, "run", dir, "--run-id", runID)
	cmd.Env, cmd.Dir = c.env, c.dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		running := 0
		for _, ct := range runContainers(t, dc, runID) {
			if ct.State == "running" {
				running++
			}
		}
		if running == 2 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the containers never ran")
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v, want code 130", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("cancel took %v", d)
	}
	if left := runContainers(t, dc, runID); len(left) != 0 {
		t.Errorf("%d containers left after Ctrl-C", len(left))
	}
	if s := c.show(runID); s.State != "CANCELED" {
		t.Errorf("state %s, want CANCELED", s.State)
	}
}

func TestDockerSubmitRefusesLocalOnlyImages(t *testing.T) {
	c, dc := dockerCLI(t)
	t.Cleanup(func() { removeImages(dc, "mlpipe-test/e2e-msg") })
	dir := writeFiles(t, map[string]string{
		"pipeline.yaml":       "name: local-image\ntasks:\n  show: {component: comp}\n",
		"comp/component.yaml": msgComponent,
		"comp/Dockerfile":     "FROM mlpipe/busybox:latest\nCOPY msg.txt /msg.txt\n",
		"comp/msg.txt":        "local",
	})
	c.mustRun("build", filepath.Join(dir, "comp"))
	submitEnv(t)
	srv := kfptest.New(t, kfptest.Options{})
	r := submit(t, dir, "--host", srv.URL())
	if r.code != 2 || !strings.Contains(r.stderr, "mlpipe-test/e2e-msg:dev exist only on this machine") {
		t.Errorf("a locally built image: %s", r)
	}
	// busybox:1.36 made by scripts/base-images.sh stands in for the public
	// image: a cluster can pull that one.
	if r := submit(t, quickstart, "--host", srv.URL()); r.code != 0 {
		t.Errorf("quickstart: %s", r)
	}
}
