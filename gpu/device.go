package gpu

import (
	"errors"
	"time"
)

// ErrNVMLUnavailable is returned when NVML cannot be used: no driver
// (libnvidia-ml.so.1 not found), no permission, or built without cgo.
var ErrNVMLUnavailable = errors.New("NVML unavailable")

// ErrInsufficient is returned when a request can never be met on this
// machine (more GPUs, or another type, than it has).
var ErrInsufficient = errors.New("not enough GPUs")

// Device is one allocatable GPU (a whole GPU or a MIG device).
type Device struct {
	Index       int       `json:"index"`
	UUID        string    `json:"uuid"`
	Name        string    `json:"name"`
	PCIBusID    string    `json:"pci_bus_id,omitempty"`
	MemoryTotal int64     `json:"memory_total"`
	MemoryUsed  int64     `json:"memory_used"`
	MemoryFree  int64     `json:"memory_free"`
	Util        float64   `json:"utilization"`        // percent; -1 when not available (MIG)
	MemUtil     float64   `json:"memory_utilization"` // percent; -1 when not available
	PowerWatts  float64   `json:"power_w"`            // -1 when not available
	MIGEnabled  bool      `json:"mig_enabled,omitempty"`
	Parent      string    `json:"parent,omitempty"` // MIG devices: the UUID of their GPU
	MIGProfile  string    `json:"mig_profile,omitempty"`
	Processes   []Process `json:"processes"`
}

// Process is a process using a GPU (host PIDs).
type Process struct {
	PID        int   `json:"pid"`
	UsedMemory int64 `json:"used_memory"` // -1 when unknown
}

// Reading is one telemetry sample of a device.
type Reading struct {
	Time       time.Time
	Util       float64 // -1 when not available
	MemUsed    int64
	PowerWatts float64 // -1 when not available
	EnergyMJ   int64   // total energy since the driver loaded, mJ; -1 when not available
}

// Inventory is what the allocator needs from NVML (or a mock of it).
type Inventory interface {
	// Devices lists the allocatable devices with fresh memory and process
	// information.
	Devices() ([]Device, error)
	// Topology scores how well each pair of devices is connected.
	Topology() Topology
	// Read samples one device.
	Read(uuid string) (Reading, error)
	// Info describes the driver ("driver 550.54.15, CUDA 12.4") and says
	// whether this is a mock.
	Info() (desc string, mock bool)
	Close() error
}

// Topology scores pairs of devices: higher is better connected.
type Topology map[[2]string]int

// Score returns the connection score of two devices.
func (t Topology) Score(a, b string) int {
	if a > b {
		a, b = b, a
	}
	return t[[2]string{a, b}]
}

// Set records the score of a pair.
func (t Topology) Set(a, b string, score int) {
	if a > b {
		a, b = b, a
	}
	t[[2]string{a, b}] = score
}

// Connection scores, after go-gpuallocator's best-effort policy
// (docs/architecture.md, "GPUs: selection policy").
const (
	ScoreNVLinkSwitch = 600 // P2P over NVLink through an NVSwitch (every pair)
	ScorePerNVLink    = 100 // each direct NVLink between the pair
	ScoreSameBoard    = 60
	ScoreSingleSwitch = 50
	ScoreMultiSwitch  = 40
	ScoreHostBridge   = 30
	ScoreSameNUMA     = 20
	ScoreCrossSocket  = 10
)
