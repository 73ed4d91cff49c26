package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mlpipe/mlpipe/gpu"
	"github.com/mlpipe/mlpipe/internal/procfs"
	"github.com/mlpipe/mlpipe/internal/units"
	"github.com/mlpipe/mlpipe/metadata"
	"github.com/mlpipe/mlpipe/runner"
	"github.com/mlpipe/mlpipe/ui"
)

func newUICmd(a *app) *cobra.Command {
	var listen string
	var open, allowRemote bool
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Show the run history in a browser: runs, live DAGs, logs, artifacts, GPUs",
		Long: `Serve the run history of this workstation as web pages: the runs (filtered and
paginated), each run's DAG with task states updated live, a task's attempts, GPU use
and log (tailed while it runs), artifacts rendered by type (metrics, confusion matrix,
ROC curve, sandboxed HTML, Markdown), the GPUs and their holders, and comparisons of
runs. It reads the same history and artifact stores as the other commands, while runs
go on in other processes. The one action is cancelling a running run (a POST with a
CSRF token). It listens on a loopback address unless --allow-remote is given, and
prints the address it serves on stdout; Ctrl-C stops it.`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUI(cmd.Context(), a, listen, open, allowRemote)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8765", "address to listen on (port 0: any free port)")
	cmd.Flags().BoolVar(&open, "open", false, "open the page in a browser (xdg-open)")
	cmd.Flags().BoolVar(&allowRemote, "allow-remote", false, "allow --listen on an address other machines can reach (no authentication: anyone who reaches it sees the history and can cancel runs)")
	return cmd
}

// isLoopback reports whether a listen host is a loopback address or name.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func runUI(ctx context.Context, a *app, listen string, open, allowRemote bool) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return usagef("--listen %q: %v (want HOST:PORT, e.g. 127.0.0.1:8765)", listen, err)
	}
	loopback := isLoopback(host)
	if !loopback && !allowRemote {
		return usagef("--listen %s is not a loopback address: other machines could read the run history and cancel runs; add --allow-remote to mean it", listen)
	}
	h, err := a.openHistory()
	if err != nil {
		return err
	}
	defer h.Close()
	gpus := &uiGPUs{a: a}
	defer gpus.close()
	srv, err := ui.New(ui.Options{
		History:      h,
		OpenArtifact: a.openArtifactForUI,
		GPUs:         gpus.status,
		Cancel:       cancelRunByPID,
		RunJSON:      func(ctx context.Context, id string) (any, error) { return runShowJSON(ctx, h, id) },
		Alive:        runAlive,
		LoopbackOnly: loopback,
		Log:          a.log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	base, stop := context.WithCancel(context.Background())
	defer stop()
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return base }}
	url := "http://" + ln.Addr().String() + "/"
	fmt.Fprintf(a.stdout, "mlpipe ui: serving %s on %s\n", a.layout().History(), url)
	if loopback {
		fmt.Fprintln(a.stderr, "mlpipe ui: listening on a loopback address: only this machine can connect (Ctrl-C to stop)")
	} else {
		fmt.Fprintf(a.stderr, "mlpipe ui: WARNING: listening on %s without authentication: anyone who can reach it can read the run history, its logs and artifacts, and cancel runs\n", ln.Addr())
	}
	if open {
		if p, err := exec.LookPath("xdg-open"); err == nil {
			c := exec.Command(p, url)
			if err := c.Start(); err == nil {
				go c.Wait()
			}
		} else {
			fmt.Fprintf(a.stderr, "mlpipe ui: no xdg-open: open %s yourself\n", url)
		}
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	stop() // ends the event streams
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
	}
	fmt.Fprintln(a.stderr, "mlpipe ui: stopped")
	return nil
}

// runShowJSON is a run as `mlpipe runs show --output json` prints it.
func runShowJSON(ctx context.Context, h *metadata.Store, id string) (any, error) {
	r, err := h.Run(ctx, id)
	if err != nil {
		return nil, err
	}
	tasks, err := h.Tasks(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	attempts, err := h.Attempts(ctx, r.ID, "")
	if err != nil {
		return nil, err
	}
	return runJSON(r, shownTasks(tasks, attempts)), nil
}

// runJSON is the document of `mlpipe runs show --output json` (and of the
// UI's /api/runs/RUN).
func runJSON(r *runner.RunRecord, shown []taskJSON) map[string]any {
	if shown == nil {
		shown = []taskJSON{}
	}
	m := runSummaryJSON(r)
	m["tasks"] = shown
	m["parameters"] = r.Params
	m["outputs"] = r.Outputs
	m["executor"] = r.Executor
	m["pipeline_root"] = r.PipelineRoot
	if r.Error != "" {
		m["error"] = r.Error
	}
	return m
}

// openArtifactForUI stages an artifact the history recorded from its store
// (local or MinIO/S3) into a temporary file, verified against the recorded
// digest, and opens it; the file goes when it is closed.
func (a *app) openArtifactForUI(ctx context.Context, art *metadata.Artifact, max int64) (io.ReadCloser, error) {
	if art.Size > max {
		return nil, fmt.Errorf("%w: %s is %s", ui.ErrTooLarge, art.URI, units.Bytes(art.Size))
	}
	st, uri, err := a.artifactStoreFor(art.URI)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "mlpipe-ui-")
	if err != nil {
		return nil, err
	}
	p := filepath.Join(tmp, "artifact")
	info, err := st.Get(ctx, uri, p, art.Digest)
	if err == nil && (info.Dir || info.Size > max) {
		err = fmt.Errorf("%w: %s is %s", ui.ErrTooLarge, art.URI, units.Bytes(info.Size))
	}
	var f *os.File
	if err == nil {
		f, err = os.Open(p)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return &tempFile{File: f, dir: tmp}, nil
}

type tempFile struct {
	*os.File
	dir string
}

func (t *tempFile) Close() error {
	err := t.File.Close()
	os.RemoveAll(t.dir)
	return err
}

// cancelRunByPID stops a run the way Ctrl-C does: SIGINT to its mlpipe
// process, which the history records, once it is sure that the PID is
// still that process: on this host, of this user, named mlpipe, and not
// started after the run (a PID reused since).
func cancelRunByPID(_ context.Context, r *runner.RunRecord) error {
	host, _ := os.Hostname()
	switch {
	case r.Host != "" && r.Host != host:
		return fmt.Errorf("it runs on %s, not on this machine", r.Host)
	case r.PID <= 0 || !procfs.Alive(r.PID):
		return errors.New("its mlpipe process is gone")
	case procfs.Owner(r.PID) != os.Getuid():
		return fmt.Errorf("its mlpipe process (pid %d) belongs to another user", r.PID)
	}
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(r.PID) + "/comm")
	if err != nil || string(bytes.TrimSpace(comm)) != "mlpipe" {
		return fmt.Errorf("pid %d is not an mlpipe process any more", r.PID)
	}
	if started, ok := processStart(r.PID); ok && started.After(r.StartedAt.Add(2*time.Second)) {
		return fmt.Errorf("pid %d started after the run: it is another process", r.PID)
	}
	return syscall.Kill(r.PID, syscall.SIGINT)
}

// processStart is when a process started, from /proc/PID/stat and the boot
// time in /proc/stat (clock ticks of 1/100 s, as on every Linux mlpipe
// runs on).
func processStart(pid int) (time.Time, bool) {
	ticks, err := strconv.ParseInt(procfs.StartTime(pid), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			boot, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			return time.Unix(boot, 0).Add(time.Duration(ticks) * 10 * time.Millisecond), true
		}
	}
	return time.Time{}, false
}

// uiGPUs reads the GPUs for the GPU page; NVML is opened on the first
// visit and kept.
type uiGPUs struct {
	a     *app
	once  sync.Once
	alloc *gpu.Allocator
	err   error
}

func (g *uiGPUs) status(context.Context) ui.GPUStatus {
	g.once.Do(func() { g.alloc, g.err = g.a.openGPUs() })
	if g.err != nil {
		return ui.GPUStatus{Error: g.err.Error()}
	}
	devs, err := g.alloc.Inventory().Devices()
	if err != nil {
		return ui.GPUStatus{Error: err.Error()}
	}
	holders := map[string]gpu.LeaseInfo{}
	for _, h := range g.alloc.Holders(devs) {
		holders[h.UUID] = h.Info
	}
	desc, mock := g.alloc.Inventory().Info()
	st := ui.GPUStatus{Driver: desc, Mock: mock}
	for _, d := range devs {
		dev := ui.GPUDevice{Index: d.Index, UUID: d.UUID, Name: d.Name, MIG: d.Parent != "", MemoryUsed: d.MemoryUsed, MemoryTotal: d.MemoryTotal,
			Util: d.Util, PowerWatts: d.PowerWatts}
		if h, ok := holders[d.UUID]; ok {
			dev.Holder = &ui.GPUHolder{User: h.User, RunID: h.RunID, Task: h.Task, PID: h.PID, Since: h.Since}
		}
		dev.Excluded = g.alloc.Excluded(d)
		st.Devices = append(st.Devices, dev)
	}
	for _, t := range g.alloc.Queue() {
		st.Waiting = append(st.Waiting, ui.GPUWaiter{User: t.User, RunID: t.RunID, Task: t.Task, Count: t.Count, Type: t.Type, Since: t.Since})
	}
	return st
}

func (g *uiGPUs) close() {
	if g.alloc != nil {
		g.alloc.Inventory().Close()
	}
}
