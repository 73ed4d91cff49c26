//go:build docker

package docker

// Tests against the Docker Engine that DOCKER_HOST names (default the local
// socket). Without a daemon they skip, unless MLPIPE_REQUIRE_DOCKER=1 (CI),
// where they fail. They need no registry: they make the base images with
// scripts/base-images.sh (busybox only) and build the rest.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"

	"github.com/mlpipe/mlpipe/runner"
	"github.com/mlpipe/mlpipe/runner/executortest"
)

// testBase is the image the tests build on (scripts/base-images.sh).
const testBase = "mlpipe/busybox:latest"

var baseOnce struct {
	sync.Once
	err error
	out []byte
}

// requireDocker returns an executor for the local daemon with the base
// images present, or skips (fails under MLPIPE_REQUIRE_DOCKER=1).
func requireDocker(t *testing.T, opts Options) *Executor {
	t.Helper()
	e, err := New(opts)
	if err == nil {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		err = e.Ping(ctx)
		cancel()
	}
	if err != nil {
		if os.Getenv("MLPIPE_REQUIRE_DOCKER") == "1" {
			t.Fatalf("Docker is required (MLPIPE_REQUIRE_DOCKER=1): %v", err)
		}
		t.Skipf("no Docker daemon: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	baseOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "base-images.sh")
		baseOnce.out, baseOnce.err = exec.Command(script).CombinedOutput()
	})
	if baseOnce.err != nil {
		t.Fatalf("scripts/base-images.sh: %v\n%s", baseOnce.err, baseOnce.out)
	}
	return e
}

// buildImage builds a Dockerfile into a uniquely named image, removed at
// the end of the test.
func buildImage(t *testing.T, e *Executor, files map[string]string) (name string, res BuildResult) {
	t.Helper()
	name = fmt.Sprintf("mlpipe-test/%s:dev", strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())))
	dir := writeTree(t, files)
	res, err := e.Build(t.Context(), BuildRequest{Dir: dir, Image: name}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeImage(e, name) })
	return name, res
}

// removeImage removes an image with all its tags (mlpipe-<hash> too).
func removeImage(e *Executor, name string) {
	ctx := context.Background()
	info, err := e.cli.ImageInspect(ctx, name)
	if err != nil {
		return
	}
	e.cli.ImageRemove(ctx, info.ID, image.RemoveOptions{Force: true, PruneChildren: true})
}

// containersOf lists the containers, running or not, of a run.
func containersOf(t *testing.T, e *Executor, runID string) []container.Summary {
	t.Helper()
	list, err := e.cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelRun+"="+runID))})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// task returns an ExecTask of a unique run whose output is captured.
func task(t *testing.T, img string, command, args []string) (*runner.ExecTask, *bytes.Buffer, *bytes.Buffer) {
	var stdout, stderr bytes.Buffer
	run := fmt.Sprintf("test-%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() {
		// No test leaves a container behind.
		e, err := New(Options{})
		if err != nil {
			return
		}
		defer e.Close()
		if left := containersOf(t, e, run); len(left) > 0 {
			t.Errorf("%d container(s) of run %s left behind", len(left), run)
		}
	})
	return &runner.ExecTask{RunID: run, Pipeline: "test", TaskPath: "step", Name: "step", Attempt: 1, Image: img,
		Command: command, Args: args, Stdout: &stdout, Stderr: &stderr}, &stdout, &stderr
}

// builders are the image builders the build tests run with, and what each
// prints for the second step of a Dockerfile.
var builders = []struct{ name, step2 string }{{"legacy", "Step 2/"}, {"buildkit", "[2/3] COPY msg.txt /msg.txt"}}

func TestBuildAndRebuildSkipping(t *testing.T) {
	for _, b := range builders {
		t.Run(b.name, func(t *testing.T) { testBuildAndRebuildSkipping(t, b.name, b.step2) })
	}
}

func testBuildAndRebuildSkipping(t *testing.T, builder, step2 string) {
	e := requireDocker(t, Options{Builder: builder})
	dir := writeTree(t, map[string]string{
		"Dockerfile":    "FROM " + testBase + "\nARG GREETING=hello\nCOPY msg.txt /msg.txt\nRUN echo \"$GREETING\" > /greeting\n",
		"msg.txt":       "one\n",
		"notes.log":     "ignored\n",
		".dockerignore": "*.log\n",
	})
	name := "mlpipe-test/rebuild-" + builder + ":dev"
	t.Cleanup(func() { removeImage(e, name) })
	var log bytes.Buffer
	first, err := e.Build(t.Context(), BuildRequest{Dir: dir, Image: name}, &log)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Built || !strings.HasPrefix(first.HashTag, "mlpipe-test/rebuild-"+builder+":mlpipe-") {
		t.Fatalf("first build %+v", first)
	}
	if !strings.Contains(log.String(), step2) {
		t.Errorf("build output not logged:\n%s", log.String())
	}
	for _, ref := range []string{name, first.HashTag} {
		if id, err := e.ImageID(t.Context(), ref); err != nil || id != first.ID {
			t.Errorf("%s is %q (%v), want %s", ref, id, err, first.ID)
		}
	}

	// Unchanged, or changed only in an ignored file: no build.
	os.WriteFile(filepath.Join(dir, "notes.log"), []byte("changed\n"), 0o644)
	log.Reset()
	again, err := e.Build(t.Context(), BuildRequest{Dir: dir, Image: name}, &log)
	if err != nil {
		t.Fatal(err)
	}
	if again.Built || again.ID != first.ID || !strings.Contains(log.String(), "is up to date") {
		t.Errorf("unchanged rebuild %+v, log %q", again, log.String())
	}

	// A changed file or build argument: a new image, under the same name.
	os.WriteFile(filepath.Join(dir, "msg.txt"), []byte("two\n"), 0o644)
	changed, err := e.Build(t.Context(), BuildRequest{Dir: dir, Image: name}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !changed.Built || changed.ID == first.ID || changed.HashTag == first.HashTag {
		t.Errorf("changed file: %+v (first %+v)", changed, first)
	}
	v := "bonjour"
	withArg, err := e.Build(t.Context(), BuildRequest{Dir: dir, Image: name, Args: map[string]*string{"GREETING": &v}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !withArg.Built || withArg.ID == changed.ID {
		t.Errorf("changed build arg: %+v", withArg)
	}
	if id, _ := e.ImageID(t.Context(), name); id != withArg.ID {
		t.Errorf("%s is %s, want the latest build %s", name, id, withArg.ID)
	}
	// Back to the earlier content: the earlier image, retagged, not rebuilt.
	back, err := e.Build(t.Context(), BuildRequest{Dir: dir, Image: name}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if back.Built || back.ID != changed.ID {
		t.Errorf("earlier content: %+v, want %s not rebuilt", back, changed.ID)
	}
	if id, _ := e.ImageID(t.Context(), name); id != changed.ID {
		t.Errorf("%s is %s after going back, want %s", name, id, changed.ID)
	}
	for _, tag := range []string{first.HashTag, changed.HashTag, withArg.HashTag} {
		t.Cleanup(func() { removeImage(e, tag) })
	}
}

func TestBuildFailureShowsLastLines(t *testing.T) {
	for _, b := range []struct{ builder, exit string }{{"legacy", "returned a non-zero code: 3"}, {"buildkit", "exit code: 3"}} {
		t.Run(b.builder, func(t *testing.T) {
			e := requireDocker(t, Options{Builder: b.builder})
			dir := writeTree(t, map[string]string{"Dockerfile": "FROM " + testBase + "\nRUN echo building-the-thing && echo oh-no >&2 && exit 3\n"})
			_, err := e.Build(t.Context(), BuildRequest{Dir: dir, Image: "mlpipe-test/broken:dev"}, nil)
			if err == nil {
				removeImage(e, "mlpipe-test/broken:dev")
				t.Fatal("a failing RUN built")
			}
			for _, want := range []string{"build image mlpipe-test/broken:dev from " + dir, b.exit, "building-the-thing", "oh-no"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

// TestBuildKitCacheMount: with BuildKit, a Dockerfile may use what only
// BuildKit has (a cache mount that outlives the build), and the output of
// its commands is shown.
func TestBuildKitCacheMount(t *testing.T) {
	e := requireDocker(t, Options{Builder: "buildkit"})
	// Unique per test run: BuildKit's own layer cache outlives the images.
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	dir := writeTree(t, map[string]string{"Dockerfile": "FROM " + testBase + "\nARG N=1\nRUN --mount=type=cache,id=" + nonce + ",target=/cache echo run-$N >> /cache/runs && cat /cache/runs && cp /cache/runs /runs\n"})
	name := "mlpipe-test/cachemount:dev"
	t.Cleanup(func() { removeImage(e, name) })
	var log bytes.Buffer
	one, two := nonce+"-1", nonce+"-2"
	first, err := e.Build(t.Context(), BuildRequest{Dir: dir, Image: name, Args: map[string]*string{"N": &one}}, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Cleanup(func() { removeImage(e, first.HashTag) })
	log.Reset()
	second, err := e.Build(t.Context(), BuildRequest{Dir: dir, Image: name, Args: map[string]*string{"N": &two}}, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Cleanup(func() { removeImage(e, second.HashTag) })
	// The second build saw what the first left in the cache.
	if !strings.Contains(log.String(), "run-"+one+"\nrun-"+two) {
		t.Errorf("the cache mount did not keep the first build's file; output:\n%s", log.String())
	}
}

func TestResolveImage(t *testing.T) {
	e := requireDocker(t, Options{})
	id, err := e.ResolveImage(t.Context(), testBase, nil)
	if err != nil || !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("ResolveImage(%s) = %q, %v", testBase, id, err)
	}
	_, err = e.ResolveImage(t.Context(), "mlpipe-test/not-here:1", nil)
	if err == nil || !strings.Contains(err.Error(), "image mlpipe-test/not-here:1 is neither local nor pullable") {
		t.Fatalf("missing image: %v", err)
	}
}

func TestRunKubernetesCommandSemantics(t *testing.T) {
	e := requireDocker(t, Options{})
	img, _ := buildImage(t, e, map[string]string{"Dockerfile": "FROM " + testBase + "\nENTRYPOINT [\"echo\", \"entrypoint\"]\nCMD [\"default-cmd\"]\n"})
	tests := []struct {
		name          string
		command, args []string
		want          string
	}{
		{"image defaults", nil, nil, "entrypoint default-cmd\n"},
		{"args replace CMD", nil, []string{"a", "b"}, "entrypoint a b\n"},
		{"command replaces ENTRYPOINT and drops CMD", []string{"echo"}, nil, "\n"},
		{"command and args", []string{"sh", "-c", "echo \"$0-$1\""}, []string{"x", "y"}, "x-y\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			et, stdout, stderr := task(t, img, tt.command, tt.args)
			res, err := e.Run(t.Context(), et)
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != 0 || stdout.String() != tt.want {
				t.Errorf("exit %d, stdout %q (stderr %q), want %q", res.ExitCode, stdout, stderr, tt.want)
			}
		})
	}
}

func TestRunStreamsExitCodeAndPhases(t *testing.T) {
	e := requireDocker(t, Options{})
	et, stdout, stderr := task(t, testBase, []string{"sh", "-c", "echo out; echo err >&2; exit 7"}, nil)
	var phases []string
	et.Phase = func(name string, start, end time.Time) { phases = append(phases, name) }
	var started string
	et.Started = func(id string) { started = id }
	res, err := e.Run(t.Context(), et)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 7 || res.OOMKilled || res.Signal != "" {
		t.Errorf("result %+v, want exit 7", res)
	}
	if stdout.String() != "out\n" || stderr.String() != "err\n" {
		t.Errorf("stdout %q, stderr %q", stdout, stderr)
	}
	if !strings.HasPrefix(res.ImageDigest, "sha256:") {
		t.Errorf("image digest %q", res.ImageDigest)
	}
	if !strings.HasPrefix(started, "container:") || len(started) < len("container:")+12 {
		t.Errorf("Started(%q)", started)
	}
	if want := "image create start execute teardown"; strings.Join(phases, " ") != want {
		t.Errorf("phases %v, want %s", phases, want)
	}
}

func TestRunOOMKilled(t *testing.T) {
	e := requireDocker(t, Options{})
	// dd's 256 MB block is allocated and written: far above the limit.
	et, _, _ := task(t, testBase, []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=256M", "count=1"}, nil)
	et.Memory = 16 << 20
	res, err := e.Run(t.Context(), et)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OOMKilled || res.ExitCode != 137 {
		t.Errorf("result %+v, want OOMKilled with exit 137", res)
	}
}

func TestRunCancelLeavesNoContainer(t *testing.T) {
	e := requireDocker(t, Options{StopTimeout: 2 * time.Second})
	// A shell that ignores SIGTERM: stopping it takes the kill after the
	// timeout.
	et, _, _ := task(t, testBase, []string{"sh", "-c", "trap '' TERM; sleep 300 & wait"}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	running := make(chan string, 1)
	et.Started = func(id string) { running <- id }
	done := make(chan error, 1)
	go func() {
		_, err := e.Run(ctx, et)
		done <- err
	}()
	var id string
	select {
	case id = <-running:
	case <-time.After(60 * time.Second):
		t.Fatal("the container did not start")
	}
	if n := len(containersOf(t, e, et.RunID)); n != 1 {
		t.Fatalf("%d containers while running, want 1", n)
	}
	start := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("cancel took %v", d)
	}
	if left := containersOf(t, e, et.RunID); len(left) != 0 {
		t.Errorf("container %s still there after cancel: %+v", id, left)
	}
}

func TestRunAsInvokingUserWithMounts(t *testing.T) {
	tests := []struct {
		name, user string
		wantUID    int
	}{
		{"invoking user", "", os.Getuid()},
		{"configured user", "4321:4321", 4321},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := requireDocker(t, Options{User: tt.user})
			out := t.TempDir()
			in := t.TempDir()
			os.Chmod(out, 0o777)
			os.WriteFile(filepath.Join(in, "data"), []byte("input\n"), 0o644)
			script := `id -u; cat /in/data; echo written > /out/file; if echo x > /in/data; then echo read-only mount is writable; exit 1; fi; echo "gpu=$NVIDIA_VISIBLE_DEVICES task=$TASK_VAR"`
			et, stdout, stderr := task(t, testBase, []string{"sh", "-c", script}, nil)
			et.Env = []string{"TASK_VAR=v"}
			et.Mounts = []runner.Mount{{HostPath: out, ContainerPath: "/out"}, {HostPath: in, ContainerPath: "/in", ReadOnly: true}}
			res, err := e.Run(t.Context(), et)
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != 0 {
				t.Fatalf("exit %d\nstdout %s\nstderr %s", res.ExitCode, stdout, stderr)
			}
			want := fmt.Sprintf("%d\ninput\ngpu=void task=v\n", tt.wantUID)
			if stdout.String() != want {
				t.Errorf("stdout %q, want %q", stdout, want)
			}
			st, err := os.Stat(filepath.Join(out, "file"))
			if err != nil {
				t.Fatal(err)
			}
			if uid := int(st.Sys().(*syscall.Stat_t).Uid); uid != tt.wantUID {
				t.Errorf("the file the container wrote belongs to uid %d, want %d", uid, tt.wantUID)
			}
		})
	}
}

func TestRunContainerSettings(t *testing.T) {
	e := requireDocker(t, Options{ShmSize: 128 << 20})
	et, stdout, _ := task(t, testBase, []string{"sh", "-c", "df -k /dev/shm | tail -1"}, nil)
	et.CPU, et.Memory = 0.5, 64<<20
	var inspected container.InspectResponse
	et.Started = func(id string) {
		inspected, _ = e.cli.ContainerInspect(context.Background(), strings.TrimPrefix(id, "container:"))
	}
	if _, err := e.Run(t.Context(), et); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "131072") {
		t.Errorf("/dev/shm: %q, want 128 MB", stdout)
	}
	hc := inspected.HostConfig
	if hc == nil {
		t.Fatal("the container could not be inspected while it ran")
	}
	if hc.Privileged || hc.NanoCPUs != 500_000_000 || hc.Memory != 64<<20 || hc.ShmSize != 128<<20 {
		t.Errorf("host config privileged %v nanocpus %d memory %d shm %d", hc.Privileged, hc.NanoCPUs, hc.Memory, hc.ShmSize)
	}
	labels := inspected.Config.Labels
	for _, k := range []string{LabelRun, LabelTask, LabelPID, LabelHost, LabelPIDStart} {
		if labels[k] == "" {
			t.Errorf("label %s missing: %v", k, labels)
		}
	}
}

// TestSecurityForkBombIsContained: a step that forks without end hits the
// container's process limit; the machine does not.
func TestSecurityForkBombIsContained(t *testing.T) {
	e := requireDocker(t, Options{PidsLimit: 32})
	et, stdout, stderr := task(t, testBase, []string{"sh", "-c",
		`n=0; i=0; while [ $i -lt 100 ]; do i=$((i+1)); (sleep 3) 2>/dev/null & done; wait; echo started`}, nil)
	var inspected container.InspectResponse
	et.Started = func(id string) {
		inspected, _ = e.cli.ContainerInspect(context.Background(), strings.TrimPrefix(id, "container:"))
	}
	if _, err := e.Run(t.Context(), et); err != nil {
		t.Fatal(err)
	}
	if hc := inspected.HostConfig; hc == nil || hc.PidsLimit == nil || *hc.PidsLimit != 32 {
		t.Fatalf("host config %+v, want a pids limit of 32", inspected.HostConfig)
	}
	if !strings.Contains(stderr.String()+stdout.String(), "fork") {
		t.Errorf("100 children under a limit of 32 all started?\nstdout %q\nstderr %q", stdout, stderr)
	}
}

func TestCleanupRemovesOrphans(t *testing.T) {
	e := requireDocker(t, Options{StateDir: t.TempDir()})
	// A PID that is certainly gone: a child that has exited.
	p := exec.Command("true")
	if err := p.Run(); err != nil {
		t.Fatal(err)
	}
	run := fmt.Sprintf("cleanup-%d", time.Now().UnixNano())
	mk := func(labels map[string]string) string {
		labels[LabelRun] = run
		c, err := e.cli.ContainerCreate(t.Context(), &container.Config{Image: testBase, Cmd: []string{"sleep", "300"}, Labels: labels}, nil, nil, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.cli.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true}) })
		if err := e.cli.ContainerStart(t.Context(), c.ID, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	owner := func(l map[string]string) map[string]string {
		l[LabelUID], l[LabelStateDir] = itoa(os.Getuid()), e.opts.StateDir
		return l
	}
	dead := mk(owner(map[string]string{LabelPID: itoa(p.Process.Pid), LabelHost: e.host}))
	live := mk(e.baseLabels())
	other := mk(owner(map[string]string{LabelPID: itoa(p.Process.Pid), LabelHost: "another-host"}))
	// Another mlpipe starting at the same time (other packages' tests run
	// in parallel) may clean the orphan up first: what matters is that it
	// is gone and the others are not.
	if _, err := e.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The other process's removal may still be under way: give it time.
	var left map[string]bool
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		left = map[string]bool{}
		for _, c := range containersOf(t, e, run) {
			left[c.ID] = true
		}
		if !left[dead] || time.Now().After(deadline) {
			break
		}
	}
	if left[dead] || !left[live] || !left[other] {
		t.Errorf("after cleanup: orphan left %v, live kept %v, other host's kept %v", left[dead], left[live], left[other])
	}
}

// TestConformance runs the executor conformance suite (the process executor
// passes the same one).
func TestConformance(t *testing.T) {
	e := requireDocker(t, Options{StopTimeout: 2 * time.Second})
	executortest.Run(t, e, testBase)
}
