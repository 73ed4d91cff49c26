package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mlpipe/mlpipe/gpu"
	"github.com/mlpipe/mlpipe/kfpir"
	"github.com/mlpipe/mlpipe/runner"
)

// containerAlive checks whether a Docker container still runs; the Docker
// wiring sets it so that GPU leases of containers that outlived a crashed
// mlpipe are respected.
var containerAlive func(id string) bool

// openGPUs opens the GPU inventory (NVML, or MLPIPE_GPU_MOCK) and the
// allocator.
func (a *app) openGPUs() (*gpu.Allocator, error) {
	lockDir := a.cfg.GPU.LockDir
	inv, err := gpu.Open(gpu.Options{Mock: a.cfg.GPU.Mock, Busy: func(u string) bool { return gpu.Busy(lockDir, u) }})
	if err != nil {
		return nil, err
	}
	alloc, err := gpu.NewAllocator(inv, gpu.AllocatorOptions{LockDir: lockDir, ContainerAlive: containerAlive, Logger: a.log})
	if err != nil {
		inv.Close()
		return nil, err
	}
	return alloc, nil
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
	var output string
	cmd := &cobra.Command{
		Use:   "gpus",
		Short: "List the GPUs, their memory and utilisation, and which run and task hold each",
		Long: `List the NVIDIA GPUs (through NVML) with their memory, utilisation and power, and which
mlpipe run and task holds each. MLPIPE_GPU_MOCK=dgxa100 (or dgxh100) shows go-nvml's
mock servers instead: every output then says it is a mock.`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runGPUs(cmd.Context(), a, output)
		},
	}
	cmd.Flags().StringVar(&output, "output", "text", "text or json")
	return cmd
}

type gpuJSON struct {
	gpu.Device
	HeldBy *gpu.LeaseInfo `json:"held_by"`
}

func runGPUs(_ context.Context, a *app, output string) error {
	if output != "text" && output != "json" {
		return usagef("--output must be text or json, not %q", output)
	}
	alloc, err := a.openGPUs()
	if errors.Is(err, gpu.ErrNVMLUnavailable) {
		if output == "json" {
			return writeJSON(a, map[string]any{"mock": false, "devices": []any{}, "error": err.Error()})
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
	desc, mock := alloc.Inventory().Info()
	if output == "json" {
		list := make([]gpuJSON, 0, len(devs))
		for _, d := range devs {
			list = append(list, gpuJSON{Device: d, HeldBy: holders[d.UUID]})
		}
		return writeJSON(a, map[string]any{"mock": mock, "driver": desc, "devices": list})
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
		if h := holders[d.UUID]; h != nil {
			held = fmt.Sprintf("run %s task %s (pid %d", h.RunID, runner.DisplayName(h.Task), h.PID)
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
			kfpir.FormatBytes(float64(d.MemoryUsed)), kfpir.FormatBytes(float64(d.MemoryTotal)), util, power, held)
	}
	return tw.Flush()
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
