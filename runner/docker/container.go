package docker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/mlpipe/mlpipe/contract"
)

// Run implements contract.Executor: one container per attempt, created from
// the image resolved for t.Image, its output streamed to t.Stdout and
// t.Stderr while it runs, removed once it has exited. Cancelling ctx stops
// the container (SIGTERM, SIGKILL after Options.StopTimeout) and removes
// it; Run then returns promptly.
func (e *Executor) Run(ctx context.Context, t *contract.ExecTask) (*contract.ExecResult, error) {
	phase := func(name string, start time.Time) {
		if t.Phase != nil {
			t.Phase(name, start, time.Now())
		}
	}
	start := time.Now()
	imageID, err := e.ResolveImage(ctx, t.Image, t.Stderr)
	if err != nil {
		return nil, err
	}
	phase("image", start)

	// Past this point the container exists on the daemon: the calls use a
	// context that cancellation does not cut, so that it is always removed.
	bg := context.WithoutCancel(ctx)
	cfg, hc := e.spec(t, imageID)
	start = time.Now()
	created, err := e.cli.ContainerCreate(bg, cfg, hc, nil, nil, "")
	if err != nil {
		return nil, fmt.Errorf("create a container from %s%s: %w", t.Image, gpuHint(t), err)
	}
	id := created.ID
	phase("create", start)
	defer func() {
		start := time.Now()
		if err := e.cli.ContainerRemove(bg, id, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !gone(err) {
			e.log.WarnContext(ctx, "remove container", "container", short(id), "task", t.TaskPath, "error", err)
		}
		phase("teardown", start)
	}()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	// Attach and wait before starting, as `docker run` does, so that no
	// output and no exit is missed.
	att, err := e.cli.ContainerAttach(bg, id, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return nil, fmt.Errorf("attach to container %s: %w", short(id), err)
	}
	defer att.Close()
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(discard(t.Stdout), discard(t.Stderr), att.Reader)
		copied <- err
	}()
	waitCtx, cancelWait := context.WithCancel(bg)
	waitC, waitErrC := e.cli.ContainerWait(waitCtx, id, container.WaitConditionNextExit)
	waited := false
	defer func() {
		cancelWait()
		if !waited {
			// The client's goroutine delivers its one result on an
			// unbuffered channel: take it so that it can end.
			go func() {
				select {
				case <-waitC:
				case <-waitErrC:
				}
			}()
		}
	}()

	start = time.Now()
	if err := e.cli.ContainerStart(bg, id, container.StartOptions{}); err != nil {
		return nil, fmt.Errorf("start container %s from %s%s: %w", short(id), t.Image, gpuHint(t), err)
	}
	phase("start", start)
	if t.Started != nil {
		t.Started("container:" + id)
	}

	start = time.Now()
	status, err := e.wait(ctx, id, waitC, waitErrC)
	waited = !errors.Is(err, errNotStopped)
	if err != nil {
		return nil, err
	}
	// The attach stream ends once the container's output is drained.
	select {
	case <-copied:
	case <-time.After(10 * time.Second):
		e.log.WarnContext(ctx, "container output did not end after it exited", "container", short(id), "task", t.TaskPath)
	}
	phase("execute", start)

	res := &contract.ExecResult{ExitCode: int(status.StatusCode), ImageDigest: imageID}
	if status.Error != nil && status.Error.Message != "" {
		res.Message = status.Error.Message
	}
	if res.ExitCode != 0 {
		// Only a failure needs the details (one more round trip).
		askUntil := time.Now().Add(oomReportWait)
		for {
			info, err := e.cli.ContainerInspect(bg, id)
			if err != nil || info.State == nil {
				break
			}
			res.OOMKilled = info.State.OOMKilled
			if info.State.Error != "" && res.Message == "" {
				res.Message = info.State.Error
			}
			// The daemon records an OOM kill from the kernel's event, which
			// may come a little after the exit (seconds on a loaded
			// machine): a SIGKILLed step with a memory limit that was not
			// cancelled is asked about again.
			if res.OOMKilled || res.ExitCode != 137 || t.Memory <= 0 || ctx.Err() != nil || time.Now().After(askUntil) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !res.OOMKilled && res.ExitCode > 128 && res.ExitCode < 128+65 {
			switch s := syscall.Signal(res.ExitCode - 128); s {
			case syscall.SIGKILL, syscall.SIGTERM, syscall.SIGINT, syscall.SIGSEGV, syscall.SIGABRT, syscall.SIGBUS:
				res.Signal = s.String()
			}
		}
	}
	return res, nil
}

// oomReportWait is how long a step killed by SIGKILL under a memory limit
// waits for the daemon to report whether the kernel's OOM killer did it.
const oomReportWait = 3 * time.Second

// errNotStopped says a stopped container did not exit in time.
var errNotStopped = errors.New("the container did not stop")

// wait returns the container's exit status. When ctx ends first the
// container is stopped, gracefully and then by force, and its status is
// still collected.
func (e *Executor) wait(ctx context.Context, id string, waitC <-chan container.WaitResponse, errC <-chan error) (container.WaitResponse, error) {
	select {
	case st := <-waitC:
		return st, nil
	case err := <-errC:
		return container.WaitResponse{}, fmt.Errorf("wait for container %s: %w", short(id), err)
	case <-ctx.Done():
	}
	secs := int(math.Ceil(e.opts.StopTimeout.Seconds()))
	bg := context.WithoutCancel(ctx)
	if err := e.cli.ContainerStop(bg, id, container.StopOptions{Timeout: &secs}); err != nil && !notFound(err) {
		e.log.WarnContext(ctx, "stop container", "container", short(id), "error", err)
	}
	select {
	case st := <-waitC:
		return st, nil
	case err := <-errC:
		return container.WaitResponse{}, fmt.Errorf("wait for container %s: %w", short(id), err)
	case <-time.After(e.opts.StopTimeout + 10*time.Second):
		return container.WaitResponse{}, fmt.Errorf("container %s: %w", short(id), errNotStopped)
	}
}

// spec builds the container's configuration from the task.
func (e *Executor) spec(t *contract.ExecTask, imageID string) (*container.Config, *container.HostConfig) {
	labels := e.baseLabels()
	labels[LabelRun] = t.RunID
	labels[LabelTask] = t.TaskPath
	labels[LabelAttempt] = strconv.Itoa(t.Attempt)
	labels[LabelPipeline] = t.Pipeline
	if len(t.GPUs) > 0 {
		labels[LabelGPUs] = strings.Join(t.GPUs, ",")
	}
	for k, v := range t.Labels {
		if !strings.HasPrefix(k, "mlpipe.") {
			labels[k] = v
		}
	}
	shm := e.opts.ShmSize
	if t.ShmSize > 0 {
		shm = t.ShmSize
	}
	return containerSpec(t, imageID, specOptions{User: e.user, ShmSize: shm, PidsLimit: e.opts.PidsLimit, Labels: labels, MockGPUs: e.opts.MockGPUs})
}

func boolPtr(b bool) *bool { return &b }

func ptr[T any](v T) *T { return &v }

// specOptions are the executor settings that shape a container.
type specOptions struct {
	User      string
	ShmSize   int64
	PidsLimit int64 // 0: DefaultPidsLimit, negative: none
	Labels    map[string]string
	MockGPUs  bool
}

// containerSpec is the pure part of spec: Kubernetes command semantics,
// environment, mounts, limits and GPUs.
func containerSpec(t *contract.ExecTask, image string, o specOptions) (*container.Config, *container.HostConfig) {
	cfg := &container.Config{
		Image:  image,
		User:   o.User,
		Env:    containerEnv(t, o.MockGPUs),
		Labels: o.Labels,
	}
	// Kubernetes: command replaces ENTRYPOINT (and then the image's CMD is
	// not used), args replace CMD; with no command the ENTRYPOINT stays.
	if len(t.Command) > 0 {
		cfg.Entrypoint = append([]string(nil), t.Command...)
		cfg.Cmd = append([]string{}, t.Args...)
	} else if len(t.Args) > 0 {
		cfg.Cmd = append([]string(nil), t.Args...)
	}
	hc := &container.HostConfig{
		// An init process as PID 1 forwards the stop signal to the step
		// (a shell or Python as PID 1 ignores SIGTERM) and reaps zombies.
		Init:       boolPtr(true),
		Privileged: false,
		ShmSize:    o.ShmSize,
		Mounts:     containerMounts(t.Mounts),
	}
	switch {
	case o.PidsLimit == 0:
		hc.PidsLimit = ptr(int64(DefaultPidsLimit))
	case o.PidsLimit > 0:
		hc.PidsLimit = ptr(o.PidsLimit)
	}
	if t.CPU > 0 {
		hc.NanoCPUs = int64(math.Round(t.CPU * 1e9))
	}
	if t.Memory > 0 {
		hc.Memory = t.Memory
		hc.MemorySwap = t.Memory // no swap, as on Kubernetes: the limit is the limit
	}
	if len(t.GPUs) > 0 && !o.MockGPUs {
		hc.DeviceRequests = []container.DeviceRequest{gpuRequest(t.GPUs)}
	}
	return cfg, hc
}

// gpuRequest asks the nvidia driver for exactly the leased GPUs, by UUID.
// Never Count: the daemon maps a count to the first GPUs of the machine.
func gpuRequest(uuids []string) container.DeviceRequest {
	return container.DeviceRequest{
		Driver:       "nvidia",
		DeviceIDs:    append([]string(nil), uuids...),
		Capabilities: [][]string{{"gpu", "compute", "utility"}},
	}
}

// containerEnv is the task's environment with the GPU variables the
// executor owns: a step without GPUs gets NVIDIA_VISIBLE_DEVICES=void, so
// that an image built with =all cannot bypass the allocator; a step with
// GPUs gets CUDA_DEVICE_ORDER=PCI_BUS_ID (the daemon sets
// NVIDIA_VISIBLE_DEVICES from the device request). With mock GPUs there is
// no device request: the leased UUIDs are passed as NVIDIA_VISIBLE_DEVICES
// and CUDA_VISIBLE_DEVICES, so that the scheduling, leasing and cleanup of
// GPU steps in containers are exercised where no NVIDIA runtime is.
func containerEnv(t *contract.ExecTask, mockGPUs bool) []string {
	forced := map[string]string{}
	switch {
	case len(t.GPUs) == 0:
		forced["NVIDIA_VISIBLE_DEVICES"] = "void"
	case mockGPUs:
		forced["NVIDIA_VISIBLE_DEVICES"] = strings.Join(t.GPUs, ",")
		forced["CUDA_VISIBLE_DEVICES"] = strings.Join(t.GPUs, ",")
		forced["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
	default:
		forced["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
	}
	env := make([]string, 0, len(t.Env)+len(forced))
	for _, kv := range t.Env {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := forced[k]; ok {
			continue
		}
		env = append(env, kv)
	}
	keys := make([]string, 0, len(forced))
	for k := range forced {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+forced[k])
	}
	return env
}

// containerMounts turns the runner's mounts into bind mounts.
func containerMounts(ms []contract.Mount) []mount.Mount {
	out := make([]mount.Mount, 0, len(ms))
	for _, m := range ms {
		target := m.ContainerPath
		if target == "" {
			target = m.HostPath
		}
		if m.Tmpfs {
			out = append(out, mount.Mount{Type: mount.TypeTmpfs, Target: target, TmpfsOptions: &mount.TmpfsOptions{SizeBytes: m.TmpfsSize}})
			continue
		}
		out = append(out, mount.Mount{Type: mount.TypeBind, Source: m.HostPath, Target: target, ReadOnly: m.ReadOnly})
	}
	return out
}

// gpuHint adds a hint to errors of steps with GPUs: the usual cause is a
// daemon without the NVIDIA Container Toolkit.
func gpuHint(t *contract.ExecTask) string {
	if len(t.GPUs) == 0 {
		return ""
	}
	return fmt.Sprintf(" with GPUs %s (does the Docker daemon have the NVIDIA Container Toolkit, nvidia-container-runtime-hook on its PATH?)", strings.Join(t.GPUs, ","))
}

// short is the 12-character form of a container or image ID.
func short(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
