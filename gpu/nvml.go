//go:build linux && cgo

package gpu

import (
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

// Options configure Open.
type Options struct {
	// Mock selects one of go-nvml's mock servers ("dgxa100", "dgxh100")
	// instead of the driver.
	Mock string
	// LibraryPath overrides libnvidia-ml.so.1.
	LibraryPath string
	// Busy tells a mock whether a GPU is leased, to fill in realistic
	// utilisation and memory (nil: always idle).
	Busy func(uuid string) bool
}

type nvmlInventory struct {
	mu     sync.Mutex
	lib    nvml.Interface
	mock   string
	desc   string
	busy   func(string) bool
	start  time.Time
	handle map[string]nvml.Device
	topo   Topology
}

// Open opens NVML, or a mock server. When NVML cannot be initialised it
// returns ErrNVMLUnavailable with the reason, and makes no other NVML call
// (go-nvml kills the process on calls after a failed Init).
func Open(opts Options) (Inventory, error) {
	inv := &nvmlInventory{mock: opts.Mock, busy: opts.Busy, start: time.Now(), handle: map[string]nvml.Device{}}
	switch opts.Mock {
	case "":
		var lo []nvml.LibraryOption
		if opts.LibraryPath != "" {
			lo = append(lo, nvml.WithLibraryPath(opts.LibraryPath))
		}
		inv.lib = nvml.New(lo...)
	case "dgxa100", "dgxh100":
		inv.lib = newMock(opts.Mock, inv)
	default:
		return nil, fmt.Errorf("%w: unknown GPU mock %q (want dgxa100 or dgxh100)", ErrNVMLUnavailable, opts.Mock)
	}
	if ret := inv.lib.Init(); ret != nvml.SUCCESS {
		return nil, fmt.Errorf("%w: %s", ErrNVMLUnavailable, initReason(ret))
	}
	driver, _ := inv.lib.SystemGetDriverVersion()
	cuda, ret := inv.lib.SystemGetCudaDriverVersion()
	inv.desc = "driver " + driver
	if ret == nvml.SUCCESS && cuda > 0 {
		inv.desc += fmt.Sprintf(", CUDA %d.%d", cuda/1000, cuda%1000/10)
	}
	if opts.Mock != "" {
		inv.desc = "MOCK " + opts.Mock + " (go-nvml mock server, no real GPU), " + inv.desc
	}
	if _, err := inv.Devices(); err != nil {
		inv.lib.Shutdown()
		return nil, err
	}
	inv.topo = inv.buildTopology()
	return inv, nil
}

func initReason(ret nvml.Return) string {
	switch ret {
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return "libnvidia-ml.so.1 not found (is the NVIDIA driver installed?)"
	case nvml.ERROR_DRIVER_NOT_LOADED:
		return "the NVIDIA driver is not loaded"
	case nvml.ERROR_NO_PERMISSION:
		return "no permission to use the NVIDIA driver"
	case nvml.ERROR_LIB_RM_VERSION_MISMATCH:
		return "the NVIDIA driver and library versions differ (reboot after a driver upgrade?)"
	}
	return "NVML init failed: " + nvml.ErrorString(ret)
}

func (inv *nvmlInventory) Info() (string, bool) { return inv.desc, inv.mock != "" }

func (inv *nvmlInventory) Close() error {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if ret := inv.lib.Shutdown(); ret != nvml.SUCCESS {
		return fmt.Errorf("NVML shutdown: %s", nvml.ErrorString(ret))
	}
	return nil
}

func (inv *nvmlInventory) Topology() Topology { return inv.topo }

// Devices implements Inventory.
func (inv *nvmlInventory) Devices() ([]Device, error) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	n, ret := inv.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("count GPUs: %s", nvml.ErrorString(ret))
	}
	var out []Device
	for i := 0; i < n; i++ {
		h, ret := inv.lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("GPU %d: %s", i, nvml.ErrorString(ret))
		}
		d, err := describe(h, i)
		if err != nil {
			return nil, err
		}
		inv.handle[d.UUID] = h
		if mode, _, ret := h.GetMigMode(); ret == nvml.SUCCESS && mode == nvml.DEVICE_MIG_ENABLE {
			d.MIGEnabled = true
			out = append(out, d)
			out = append(out, inv.migDevices(h, d)...)
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

func describe(h nvml.Device, index int) (Device, error) {
	d := Device{Index: index, Util: -1, MemUtil: -1, PowerWatts: -1, Processes: []Process{}}
	var ret nvml.Return
	if d.UUID, ret = h.GetUUID(); ret != nvml.SUCCESS {
		return d, fmt.Errorf("GPU %d uuid: %s", index, nvml.ErrorString(ret))
	}
	d.Name, _ = h.GetName()
	if idx, ret := h.GetIndex(); ret == nvml.SUCCESS {
		d.Index = idx
	}
	if m, ret := h.GetMemoryInfo(); ret == nvml.SUCCESS {
		d.MemoryTotal, d.MemoryUsed, d.MemoryFree = int64(m.Total), int64(m.Used), int64(m.Free)
	}
	if u, ret := h.GetUtilizationRates(); ret == nvml.SUCCESS {
		d.Util, d.MemUtil = float64(u.Gpu), float64(u.Memory)
	}
	if p, ret := h.GetPowerUsage(); ret == nvml.SUCCESS {
		d.PowerWatts = float64(p) / 1000
	}
	if pci, ret := h.GetPciInfo(); ret == nvml.SUCCESS {
		d.PCIBusID = busID(pci.BusId[:])
	}
	if procs, ret := h.GetComputeRunningProcesses(); ret == nvml.SUCCESS {
		for _, p := range procs {
			used := int64(p.UsedGpuMemory)
			if p.UsedGpuMemory == math.MaxUint64 {
				used = -1
			}
			d.Processes = append(d.Processes, Process{PID: int(p.Pid), UsedMemory: used})
		}
	}
	return d, nil
}

func (inv *nvmlInventory) migDevices(h nvml.Device, parent Device) []Device {
	max, ret := h.GetMaxMigDeviceCount()
	if ret != nvml.SUCCESS {
		return nil
	}
	var out []Device
	for j := 0; j < max; j++ {
		mh, ret := h.GetMigDeviceHandleByIndex(j)
		if ret != nvml.SUCCESS {
			continue
		}
		md, err := describe(mh, parent.Index)
		if err != nil {
			continue
		}
		md.Parent = parent.UUID
		md.Util, md.MemUtil = -1, -1 // not supported on MIG
		if i := strings.Index(md.Name, "MIG "); i >= 0 {
			md.MIGProfile = strings.TrimSpace(md.Name[i+4:])
		}
		inv.handle[md.UUID] = mh
		out = append(out, md)
	}
	return out
}

// busID converts NVML's NUL-terminated bus id to the lower-case, 4-digit
// domain form sysfs uses.
func busID(raw []int8) string {
	b := make([]byte, 0, len(raw))
	for _, c := range raw {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	s := strings.ToLower(string(b))
	if i := strings.IndexByte(s, ':'); i == 8 && strings.HasPrefix(s, "0000") {
		s = s[4:]
	}
	return s
}

func (inv *nvmlInventory) buildTopology() Topology {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	topo := Topology{}
	type hd struct {
		uuid string
		h    nvml.Device
	}
	var all []hd
	for u, h := range inv.handle {
		all = append(all, hd{u, h})
	}
	for i := range all {
		for j := i + 1; j < len(all); j++ {
			a, b := all[i], all[j]
			if st, ret := a.h.GetP2PStatus(b.h, nvml.P2P_CAPS_INDEX_NVLINK); ret == nvml.SUCCESS && st == nvml.P2P_STATUS_OK {
				topo.Set(a.uuid, b.uuid, ScoreNVLinkSwitch)
				continue
			}
			lvl, ret := a.h.GetTopologyCommonAncestor(b.h)
			if ret != nvml.SUCCESS {
				continue
			}
			switch lvl {
			case nvml.TOPOLOGY_INTERNAL:
				topo.Set(a.uuid, b.uuid, ScoreSameBoard)
			case nvml.TOPOLOGY_SINGLE:
				topo.Set(a.uuid, b.uuid, ScoreSingleSwitch)
			case nvml.TOPOLOGY_MULTIPLE:
				topo.Set(a.uuid, b.uuid, ScoreMultiSwitch)
			case nvml.TOPOLOGY_HOSTBRIDGE:
				topo.Set(a.uuid, b.uuid, ScoreHostBridge)
			case nvml.TOPOLOGY_NODE:
				topo.Set(a.uuid, b.uuid, ScoreSameNUMA)
			default:
				topo.Set(a.uuid, b.uuid, ScoreCrossSocket)
			}
		}
	}
	return topo
}

// Read implements Inventory.
func (inv *nvmlInventory) Read(uuid string) (Reading, error) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	h, ok := inv.handle[uuid]
	if !ok {
		return Reading{}, fmt.Errorf("unknown GPU %s", uuid)
	}
	r := Reading{Time: time.Now(), Util: -1, PowerWatts: -1, EnergyMJ: -1}
	if u, ret := h.GetUtilizationRates(); ret == nvml.SUCCESS {
		r.Util = float64(u.Gpu)
	}
	if m, ret := h.GetMemoryInfo(); ret == nvml.SUCCESS {
		r.MemUsed = int64(m.Used)
	}
	if p, ret := h.GetPowerUsage(); ret == nvml.SUCCESS {
		r.PowerWatts = float64(p) / 1000
	}
	if e, ret := h.GetTotalEnergyConsumption(); ret == nvml.SUCCESS {
		r.EnergyMJ = int64(e)
	}
	return r, nil
}

// newMock builds a go-nvml mock server with stable UUIDs (so that several
// mlpipe processes agree on them) and the telemetry calls the mock lacks,
// filled in realistically: idle GPUs use a little memory and power, leased
// ones are busy.
func newMock(kind string, inv *nvmlInventory) nvml.Interface {
	var s *server.Server
	if kind == "dgxh100" {
		s = dgxh100.New()
	} else {
		s = dgxa100.New()
	}
	h := fnv.New32a()
	h.Write([]byte(kind))
	tag := h.Sum32()
	for i, nd := range s.Devices {
		d := nd.(*server.Device)
		d.UUID = fmt.Sprintf("GPU-%08x-0000-4000-8000-%012d", tag, i)
		d.PciBusID = fmt.Sprintf("0000:%02x:00.0", 0x07+i*0x10)
		total := d.MemoryInfo.Total
		dev := d
		busy := func() bool { return inv.busy != nil && inv.busy(dev.UUID) }
		load := func() float64 {
			// 75–98 %, varying smoothly with time, when leased.
			t := time.Since(inv.start).Seconds()
			return 86.5 + 11.5*math.Sin(t*1.7+float64(dev.Index))
		}
		d.GetMemoryInfoFunc = func() (nvml.Memory, nvml.Return) {
			used := uint64(float64(total) * 0.005)
			if busy() {
				used = uint64(float64(total) * 0.62)
			}
			return nvml.Memory{Total: total, Used: used, Free: total - used}, nvml.SUCCESS
		}
		d.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) {
			if busy() {
				l := load()
				return nvml.Utilization{Gpu: uint32(l), Memory: uint32(l * 0.6)}, nvml.SUCCESS
			}
			return nvml.Utilization{}, nvml.SUCCESS
		}
		d.GetPowerUsageFunc = func() (uint32, nvml.Return) {
			if busy() {
				return uint32(100000 + load()*3000), nvml.SUCCESS
			}
			return 62000, nvml.SUCCESS
		}
		d.GetTotalEnergyConsumptionFunc = func() (uint64, nvml.Return) {
			// mJ since start, at the current power.
			return uint64(time.Since(inv.start).Seconds() * 62000), nvml.SUCCESS
		}
		d.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.SUCCESS }
		d.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) {
			var p nvml.PciInfo
			for k, c := range "0000" + dev.PciBusID {
				if k < len(p.BusId)-1 {
					p.BusId[k] = int8(c)
				}
			}
			return p, nvml.SUCCESS
		}
		// NVSwitch systems: every pair is NVLinked.
		d.GetP2PStatusFunc = func(nvml.Device, nvml.GpuP2PCapsIndex) (nvml.GpuP2PStatus, nvml.Return) {
			return nvml.P2P_STATUS_OK, nvml.SUCCESS
		}
		d.GetTopologyCommonAncestorFunc = func(o nvml.Device) (nvml.GpuTopologyLevel, nvml.Return) {
			if o.(*server.Device).Index/4 == dev.Index/4 {
				return nvml.TOPOLOGY_NODE, nvml.SUCCESS
			}
			return nvml.TOPOLOGY_SYSTEM, nvml.SUCCESS
		}
		d.GetMaxMigDeviceCountFunc = func() (int, nvml.Return) { return 0, nvml.SUCCESS }
	}
	return s
}
