package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mlpipe/mlpipe/gpu"
	"github.com/mlpipe/mlpipe/internal/termsafe"
	"github.com/mlpipe/mlpipe/kfpir"
	"github.com/mlpipe/mlpipe/runner"
)

// containerAlive checks whether a Docker container still runs; the Docker
// wiring sets it so that GPU leases of containers that outlived a crashed
// mlpipe are respected.
var containerAlive func(id string) bool

// openGPUs opens the GPU inventory (NVML, or MLPIPE_GPU_MOCK) and the
// allocator, over the lease directory chosen by gpuLockDir.
func (a *app) openGPUs() (*gpu.Allocator, error) {
	var lockDir string
	inv, err := gpu.Open(gpu.Options{Mock: a.cfg.GPU.Mock, Busy: func(u string) bool { return gpu.Busy(lockDir, u) }})
	if err != nil {
		return nil, err
	}
	if lockDir, err = a.gpuLockDir(inv); err != nil {
		inv.Close()
		return nil, err
	}
	alloc, err := gpu.NewAllocator(inv, gpu.AllocatorOptions{LockDir: lockDir, ContainerAlive: containerAlive, Logger: a.log,
		Exclude: a.cfg.GPU.Exclude, MaxPerUser: a.cfg.GPU.MaxPerUser, StarveAfter: a.cfg.GPU.StarveAfter})
	if err != nil {
		inv.Close()
		return nil, err
	}
	return alloc, nil
}

// gpuLockDir is where GPU leases live: gpu.lock_dir when set (the machine
// policy's wins), else the owner's shared directory, set up on the way when
// mlpipe runs as root, else one of the user's own, with a warning that
// other users do not see its leases.
func (a *app) gpuLockDir(inv gpu.Inventory) (string, error) {
	dir := a.cfg.GPU.LockDir
	// Root makes the owner's directory (and only that one: never a
	// directory such as /tmp that happens to be named).
	setUp := os.Geteuid() == 0 && (dir == gpu.SharedLockDir || (dir != "" && dir == a.cfg.machineLockDir))
	if dir == "" {
		ch := gpu.DefaultLockDir()
		dir, setUp = ch.Dir, ch.SetUp
		if !ch.Shared {
			fmt.Fprintf(a.stderr, "mlpipe: GPU leases are not shared with other users of this machine (no %s): the workstation's owner can run `sudo mlpipe gpus setup` once\n", gpu.SharedLockDir)
		}
	}
	if _, err := os.Lstat(dir); err != nil && !setUp && dir != "" && (dir == gpu.SharedLockDir || dir == a.cfg.machineLockDir) {
		return "", fmt.Errorf("the machine's GPU lease directory %s does not exist: the workstation's owner must run `sudo mlpipe gpus setup` once", dir)
	}
	if setUp {
		devs, err := inv.Devices()
		if err != nil {
			return "", err
		}
		if _, err := gpu.Setup(dir, devs); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// gpuAllocator returns the allocator for a run of ir, or nil and why there
// is none. NVML is only opened when a task asks for GPUs.
func (a *app) gpuAllocator(ir *kfpir.IR) (runner.GPUAllocator, string, func()) {
	if !needsGPUs(ir) {
		return nil, "no task asks for GPUs", func() {}
	}
	alloc, err := a.openGPUs()
	if err != nil {
		return nil, strings.TrimPrefix(err.Error(), gpu.ErrNVMLUnavailable.Error()+": "), func() {}
	}
	if desc, mock := alloc.Inventory().Info(); mock {
		fmt.Fprintf(a.stderr, "mlpipe: GPUs: %s\n", desc)
	}
	return alloc, "", func() { alloc.Inventory().Close() }
}

func needsGPUs(ir *kfpir.IR) bool {
	for _, e := range ir.Executors {
		if e.Container != nil && e.Container.Resources.AcceleratorCount != "" && e.Container.Resources.AcceleratorCount != "0" {
			return true
		}
	}
	return false
}

func newGPUsCmd(a *app) *cobra.Command {
	var output, userName string
	cmd := &cobra.Command{
		Use:   "gpus",
		Short: "List the GPUs, their memory and utilisation, who holds each, and who waits",
		Long: `List the NVIDIA GPUs (through NVML) with their memory, utilisation and power, which
user's mlpipe run and task holds each, and the steps waiting for GPUs (of every user).
MLPIPE_GPU_MOCK=dgxa100 (or dgxh100) shows go-nvml's mock servers instead: every output
then says it is a mock.`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGPUs(cmd.Context(), a, output, userName)
		},
	}
	cmd.Flags().StringVar(&output, "output", "text", "text or json")
	cmd.Flags().StringVar(&userName, "user", "", "show only the GPUs held and the requests waiting of this user")
	setup := &cobra.Command{
		Use:   "setup",
		Short: "Make the machine-wide GPU lease directory that every user shares (root)",
		Long: `Make the lease directory that the mlpipe processes of every user of this workstation
share (` + gpu.SharedLockDir + `, or gpu.lock_dir of the machine configuration): owned by
root, mode 0755, with one lock file per GPU, root-owned and mode 0666. Run it once as
root, and again after adding GPUs; any mlpipe that runs as root with GPUs does it on
the way. Without it, each user's GPU leases are private to that user.`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGPUSetup(a)
		},
	}
	cmd.AddCommand(setup)
	return cmd
}

// runGPUSetup makes the shared lease directory.
func runGPUSetup(a *app) error {
	if os.Geteuid() != 0 {
		return usagef("gpus setup makes a root-owned directory: run it as root (sudo mlpipe gpus setup)")
	}
	inv, err := gpu.Open(gpu.Options{Mock: a.cfg.GPU.Mock})
	if err != nil {
		return err
	}
	defer inv.Close()
	devs, err := inv.Devices()
	if err != nil {
		return err
	}
	dir := gpu.SharedLockDir
	if a.cfg.machineLockDir != "" {
		dir = a.cfg.machineLockDir
	}
	created, err := gpu.Setup(dir, devs)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "GPU leases of every user go to %s (%d GPU(s), %d file(s) created)\n", dir, len(devs), len(created))
	return nil
}

type gpuJSON struct {
	gpu.Device
	HeldBy   *gpu.LeaseInfo `json:"held_by"`
	Excluded bool           `json:"excluded,omitempty"`
}

func runGPUs(_ context.Context, a *app, output, userName string) error {
	if output != "text" && output != "json" {
		return usagef("--output must be text or json, not %q", output)
	}
	alloc, err := a.openGPUs()
	if errors.Is(err, gpu.ErrNVMLUnavailable) {
		if output == "json" {
			return writeJSON(a, map[string]any{"mock": false, "devices": []any{}, "queue": []any{}, "error": err.Error()})
		}
		fmt.Fprintf(a.stdout, "no GPUs: %v\n", err)
		return nil
	}
	if err != nil {
		return err
	}
	defer alloc.Inventory().Close()
	devs, err := alloc.Inventory().Devices()
	if err != nil {
		return err
	}
	holders := map[string]*gpu.LeaseInfo{}
	for _, h := range alloc.Holders(devs) {
		info := h.Info
		holders[h.UUID] = &info
	}
	queue := alloc.Queue()
	if userName != "" {
		var mine []gpu.Device
		for _, d := range devs {
			if h := holders[d.UUID]; h != nil && h.User == userName {
				mine = append(mine, d)
			}
		}
		devs = mine
		var q []gpu.Ticket
		for _, t := range queue {
			if t.User == userName {
				q = append(q, t)
			}
		}
		queue = q
	}
	if queue == nil {
		queue = []gpu.Ticket{}
	}
	desc, mock := alloc.Inventory().Info()
	if output == "json" {
		list := make([]gpuJSON, 0, len(devs))
		for _, d := range devs {
			list = append(list, gpuJSON{Device: d, HeldBy: holders[d.UUID], Excluded: alloc.Excluded(d)})
		}
		return writeJSON(a, map[string]any{"mock": mock, "driver": desc, "lock_dir": alloc.LockDir(), "devices": list, "queue": queue})
	}
	fmt.Fprintf(a.stdout, "%d GPU(s): %s\n", len(devs), desc)
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IDX\tUUID\tNAME\tMEMORY\tUTIL\tPOWER\tHELD BY")
	for _, d := range devs {
		util := "n/a"
		if d.Util >= 0 {
			util = fmt.Sprintf("%.0f%%", d.Util)
		}
		power := "n/a"
		if d.PowerWatts >= 0 {
			power = fmt.Sprintf("%.0f W", d.PowerWatts)
		}
		held := "-"
		if alloc.Excluded(d) {
			held = "excluded (machine policy)"
		}
		if h := holders[d.UUID]; h != nil {
			who := h.User
			if who == "" {
				who = "pid " + fmt.Sprint(h.PID)
			}
			held = fmt.Sprintf("%s: run %s task %s (pid %d", who, h.RunID, runner.DisplayName(h.Task), h.PID)
			if h.Container != "" {
				held += ", container " + shortID(h.Container)
			}
			if !h.Since.IsZero() {
				held += ", since " + h.Since.Local().Format(time.TimeOnly)
			}
			held += ")"
		}
		idx := fmt.Sprint(d.Index)
		if d.Parent != "" {
			idx += " (MIG)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s / %s\t%s\t%s\t%s\n", idx, d.UUID, d.Name,
			kfpir.FormatBytes(float64(d.MemoryUsed)), kfpir.FormatBytes(float64(d.MemoryTotal)), util, power, termsafe.Escape(held))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(queue) > 0 {
		fmt.Fprintln(a.stdout, "\nWaiting, oldest first:")
		for _, t := range queue {
			fmt.Fprintf(a.stdout, "  %s: %d GPU(s) for run %s task %s, since %s\n", termsafe.Escape(t.User), t.Count,
				termsafe.Escape(t.RunID), termsafe.Escape(runner.DisplayName(t.Task)), t.Since.Local().Format(time.TimeOnly))
		}
	}
	return nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
