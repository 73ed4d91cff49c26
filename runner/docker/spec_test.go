package docker

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/strslice"
	"github.com/google/go-cmp/cmp"

	"github.com/mlpipe/mlpipe/runner"
)

func TestContainerSpecCommandSemantics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		command, args  []string
		wantEntrypoint strslice.StrSlice
		wantCmd        strslice.StrSlice
	}{
		{name: "command and args replace ENTRYPOINT and CMD", command: []string{"sh", "-c", "echo $0"}, args: []string{"x"},
			wantEntrypoint: strslice.StrSlice{"sh", "-c", "echo $0"}, wantCmd: strslice.StrSlice{"x"}},
		// With a command and no args the image's CMD must not be appended:
		// an empty, non-nil Cmd says so.
		{name: "command alone clears CMD", command: []string{"true"},
			wantEntrypoint: strslice.StrSlice{"true"}, wantCmd: strslice.StrSlice{}},
		{name: "args alone keep ENTRYPOINT", args: []string{"--flag", "v"},
			wantCmd: strslice.StrSlice{"--flag", "v"}},
		{name: "neither keeps the image's defaults"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, _ := containerSpec(&runner.ExecTask{Command: tt.command, Args: tt.args}, "sha256:abc", specOptions{})
			if d := cmp.Diff(tt.wantEntrypoint, cfg.Entrypoint); d != "" {
				t.Errorf("Entrypoint (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.wantCmd, cfg.Cmd); d != "" {
				t.Errorf("Cmd (-want +got):\n%s", d)
			}
			if (tt.wantCmd == nil) != (cfg.Cmd == nil) {
				t.Errorf("Cmd nil = %v, want %v", cfg.Cmd == nil, tt.wantCmd == nil)
			}
		})
	}
}

func TestContainerSpecEnvAndGPUs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		env         []string
		gpus        []string
		mock        bool
		wantEnv     []string
		wantDevices []container.DeviceRequest
	}{
		{
			name:    "no GPUs: NVIDIA_VISIBLE_DEVICES=void, even over the task's own",
			env:     []string{"A=1", "NVIDIA_VISIBLE_DEVICES=all"},
			wantEnv: []string{"A=1", "NVIDIA_VISIBLE_DEVICES=void"},
		},
		{
			name:    "GPUs by UUID, never Count",
			env:     []string{"A=1"},
			gpus:    []string{"GPU-aaaa", "MIG-bbbb"},
			wantEnv: []string{"A=1", "CUDA_DEVICE_ORDER=PCI_BUS_ID"},
			wantDevices: []container.DeviceRequest{{
				Driver:       "nvidia",
				DeviceIDs:    []string{"GPU-aaaa", "MIG-bbbb"},
				Capabilities: [][]string{{"gpu", "compute", "utility"}},
			}},
		},
		{
			name:    "mock GPUs: their UUIDs in the environment, no device request",
			env:     []string{"A=1", "CUDA_VISIBLE_DEVICES=0"},
			gpus:    []string{"GPU-aaaa", "GPU-cccc"},
			mock:    true,
			wantEnv: []string{"A=1", "CUDA_DEVICE_ORDER=PCI_BUS_ID", "CUDA_VISIBLE_DEVICES=GPU-aaaa,GPU-cccc", "NVIDIA_VISIBLE_DEVICES=GPU-aaaa,GPU-cccc"},
		},
		{
			name:    "mock GPUs, none leased: void",
			mock:    true,
			wantEnv: []string{"NVIDIA_VISIBLE_DEVICES=void"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, hc := containerSpec(&runner.ExecTask{Env: tt.env, GPUs: tt.gpus}, "img", specOptions{MockGPUs: tt.mock})
			if d := cmp.Diff(tt.wantEnv, cfg.Env); d != "" {
				t.Errorf("Env (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tt.wantDevices, hc.DeviceRequests); d != "" {
				t.Errorf("DeviceRequests (-want +got):\n%s", d)
			}
			for _, r := range hc.DeviceRequests {
				if r.Count != 0 {
					t.Errorf("device request with Count %d: the daemon maps counts to the first GPUs", r.Count)
				}
			}
		})
	}
}

func TestContainerSpecHostConfig(t *testing.T) {
	t.Parallel()
	task := &runner.ExecTask{
		Mounts: []runner.Mount{
			{HostPath: "/state/runs/r/t", ContainerPath: "/state/runs/r/t"},
			{HostPath: "/state/artifacts/p/r/a/out", ContainerPath: "/minio/bucket/p/r/a/out", ReadOnly: true},
		},
		CPU:    1.5,
		Memory: 256 << 20,
	}
	labels := map[string]string{LabelRun: "r"}
	cfg, hc := containerSpec(task, "sha256:abc", specOptions{User: "1000:1000", ShmSize: 1 << 30, Labels: labels})
	if cfg.Image != "sha256:abc" || cfg.User != "1000:1000" || cfg.WorkingDir != "" {
		t.Errorf("config image %q user %q workdir %q", cfg.Image, cfg.User, cfg.WorkingDir)
	}
	if d := cmp.Diff(labels, cfg.Labels); d != "" {
		t.Errorf("labels (-want +got):\n%s", d)
	}
	wantMounts := []mount.Mount{
		{Type: mount.TypeBind, Source: "/state/runs/r/t", Target: "/state/runs/r/t"},
		{Type: mount.TypeBind, Source: "/state/artifacts/p/r/a/out", Target: "/minio/bucket/p/r/a/out", ReadOnly: true},
	}
	if d := cmp.Diff(wantMounts, hc.Mounts); d != "" {
		t.Errorf("mounts (-want +got):\n%s", d)
	}
	if hc.Privileged {
		t.Error("privileged container")
	}
	if hc.Init == nil || !*hc.Init {
		t.Error("no init process")
	}
	if hc.ShmSize != 1<<30 || hc.NanoCPUs != 1_500_000_000 || hc.Memory != 256<<20 || hc.MemorySwap != 256<<20 {
		t.Errorf("shm %d, nanocpus %d, memory %d, swap %d", hc.ShmSize, hc.NanoCPUs, hc.Memory, hc.MemorySwap)
	}
	if hc.PidsLimit == nil || *hc.PidsLimit != DefaultPidsLimit {
		t.Errorf("pids limit %v, want the default %d", hc.PidsLimit, DefaultPidsLimit)
	}
	if _, hc := containerSpec(task, "img", specOptions{PidsLimit: 50}); hc.PidsLimit == nil || *hc.PidsLimit != 50 {
		t.Errorf("pids limit %v, want 50", hc.PidsLimit)
	}
	if _, hc := containerSpec(task, "img", specOptions{PidsLimit: -1}); hc.PidsLimit != nil {
		t.Errorf("pids limit %v, want none", *hc.PidsLimit)
	}
	_, hc = containerSpec(&runner.ExecTask{}, "img", specOptions{})
	if hc.NanoCPUs != 0 || hc.Memory != 0 || hc.MemorySwap != 0 || hc.DeviceRequests != nil {
		t.Errorf("no limits asked, got nanocpus %d memory %d swap %d devices %v", hc.NanoCPUs, hc.Memory, hc.MemorySwap, hc.DeviceRequests)
	}
}

func TestExecutorDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		user, want string
	}{
		{"", currentUser()},
		{"image", ""},
		{"1234:5678", "1234:5678"},
	}
	for _, tt := range tests {
		e := newWithClient(nil, Options{User: tt.user})
		if e.user != tt.want {
			t.Errorf("User %q: container user %q, want %q", tt.user, e.user, tt.want)
		}
		if e.opts.ShmSize != DefaultShmSize {
			t.Errorf("default shm size %d", e.opts.ShmSize)
		}
	}
	e := newWithClient(nil, Options{})
	cfg, _ := e.spec(&runner.ExecTask{RunID: "r1", TaskPath: "loop/train", Attempt: 2, Pipeline: "p"}, "img")
	for k, want := range map[string]string{LabelRun: "r1", LabelTask: "loop/train", LabelAttempt: "2", LabelPipeline: "p", LabelPID: itoa(e.pid), LabelHost: e.host} {
		if got := cfg.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
}

func currentUser() string { return fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()) }

func itoa(i int) string { return strconv.Itoa(i) }
