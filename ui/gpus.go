package ui

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mlpipe/mlpipe/internal/units"
)

// gpuWindow is how far back the GPU page draws utilisation and memory.
const gpuWindow = 10 * time.Minute

// gpuHistory keeps the readings the GPU page and its updates took, per
// GPU, for the last gpuWindow.
type gpuHistory struct {
	mu   sync.Mutex
	last time.Time
	now  GPUStatus
	seen map[string][]gpuReading
}

type gpuReading struct {
	t         time.Time
	util, mem float64 // percent; -1 unknown
}

func newGPUHistory() *gpuHistory { return &gpuHistory{seen: map[string][]gpuReading{}} }

// status reads the GPUs (at most once a second) and records the reading.
func (s *Server) gpuStatus(r *http.Request) GPUStatus {
	g := s.gpus
	g.mu.Lock()
	defer g.mu.Unlock()
	if s.o.GPUs == nil {
		return GPUStatus{Error: "this server does not read GPUs"}
	}
	now := time.Now()
	if now.Sub(g.last) < time.Second {
		return g.now
	}
	g.last, g.now = now, s.o.GPUs(r.Context())
	for _, d := range g.now.Devices {
		mem := -1.0
		if d.MemoryTotal > 0 {
			mem = 100 * float64(d.MemoryUsed) / float64(d.MemoryTotal)
		}
		rs := append(g.seen[d.UUID], gpuReading{now, d.Util, mem})
		for len(rs) > 0 && now.Sub(rs[0].t) > gpuWindow {
			rs = rs[1:]
		}
		g.seen[d.UUID] = rs
	}
	return g.now
}

type gpuRow struct {
	GPUDevice
	Util, Mem, Power  string
	UtilLine, MemLine string // the last minutes, SVG polyline points in 120x24
	Held              string
	RunURL, TaskURL   string
}

type gpuData struct {
	Status GPUStatus
	Rows   []gpuRow
}

func (s *Server) gpuRows(r *http.Request) gpuData {
	st := s.gpuStatus(r)
	d := gpuData{Status: st}
	s.gpus.mu.Lock()
	defer s.gpus.mu.Unlock()
	for _, dev := range st.Devices {
		row := gpuRow{GPUDevice: dev, Util: "n/a", Power: "n/a", Mem: units.Bytes(dev.MemoryUsed) + " / " + units.Bytes(dev.MemoryTotal)}
		if dev.Util >= 0 {
			row.Util = strconv.FormatFloat(dev.Util, 'f', 0, 64) + "%"
		}
		if dev.PowerWatts >= 0 {
			row.Power = strconv.FormatFloat(dev.PowerWatts, 'f', 0, 64) + " W"
		}
		if h := dev.Holder; h != nil {
			who := h.User
			if who == "" {
				who = "pid " + strconv.Itoa(h.PID)
			}
			row.Held = who
			if h.RunID != "" {
				row.RunURL = "/runs/" + urlID(h.RunID)
				row.TaskURL = taskURL(h.RunID, h.Task)
			}
		}
		rs := s.gpus.seen[dev.UUID]
		row.UtilLine = line(rs, func(g gpuReading) float64 { return g.util })
		row.MemLine = line(rs, func(g gpuReading) float64 { return g.mem })
		d.Rows = append(d.Rows, row)
	}
	return d
}

// line draws readings over the window as polyline points (0..100 -> 24..2).
func line(rs []gpuReading, f func(gpuReading) float64) string {
	if len(rs) == 0 {
		return ""
	}
	end := rs[len(rs)-1].t
	var pts []string
	for _, r := range rs {
		v := f(r)
		if v < 0 {
			continue
		}
		x := 120 - 120*float64(end.Sub(r.t))/float64(gpuWindow)
		pts = append(pts, strconv.FormatFloat(x, 'f', 1, 64)+","+strconv.FormatFloat(24-22*v/100, 'f', 1, 64))
	}
	return strings.Join(pts, " ")
}

func (s *Server) gpuPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, "gpus", "GPUs", "gpus", s.gpuRows(r))
}

// gpuAPI is the GPUs now, as JSON (the page's live update reloads it).
func (s *Server) gpuAPI(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.gpuStatus(r))
}
