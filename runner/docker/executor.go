package docker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/client"

	"github.com/mlpipe/mlpipe/contract"
	"github.com/mlpipe/mlpipe/internal/procfs"
	"github.com/mlpipe/mlpipe/pyfunc"
)

// Labels every container of mlpipe carries.
const (
	LabelRun      = "mlpipe.run"
	LabelTask     = "mlpipe.task"
	LabelAttempt  = "mlpipe.attempt"
	LabelPipeline = "mlpipe.pipeline"
	LabelPID      = "mlpipe.pid"
	LabelPIDStart = "mlpipe.pid_start" // start time of the PID, to tell a reused PID
	LabelHost     = "mlpipe.host"
	// LabelUID and LabelStateDir name whose container it is: orphan
	// cleanup removes only the containers of the same user and state
	// directory (another user's, or another state dir's run that a later
	// resume collects, are left alone).
	LabelUID      = "mlpipe.uid"
	LabelStateDir = "mlpipe.state_dir"
	// LabelGPUs lists the UUIDs of the GPUs leased to the container.
	LabelGPUs = "mlpipe.gpus"
	// LabelContextHash is set on images built from a component directory.
	LabelContextHash = "mlpipe.context_hash"
	// LabelBuildArgs records the build arguments of an image built by
	// mlpipe (JSON), reused when a run rebuilds the component.
	LabelBuildArgs = "mlpipe.build_args"
	// LabelStandIn marks a locally made image that stands in for public
	// images (a comma-separated list of references), such as the
	// busybox:1.36 that scripts/base-images.sh makes without a registry: a
	// cluster can pull the real one, so submit does not count it as
	// local-only.
	LabelStandIn = "mlpipe.stand_in_for"
)

// DefaultPidsLimit is the container process limit unless Options.PidsLimit
// says otherwise: far above what a training step uses (PyTorch data loader
// workers and their threads count a few hundred), far below what
// exhausts the machine.
const DefaultPidsLimit = 4096

// DefaultShmSize is the size of /dev/shm in the containers unless
// Options.ShmSize says otherwise (Docker's own 64 MB breaks PyTorch data
// loaders).
const DefaultShmSize = 1 << 30

// Options configures an Executor.
type Options struct {
	// BuildContexts maps an image name (as components name it) to the
	// component directory whose Dockerfile builds it.
	BuildContexts map[string]string
	// BuildArgs are passed to every build (a nil value keeps the
	// Dockerfile's default). When nil, a component is rebuilt with the
	// arguments its image was last built with by mlpipe (LabelBuildArgs).
	BuildArgs map[string]*string
	// User is the container user: "" runs as the invoking user's uid:gid
	// (so files written to mounted directories belong to the user),
	// "image" keeps the image's USER, anything else is given to Docker
	// as is ("1000:1000", "root").
	User string
	// ShmSize is the size of /dev/shm in bytes (0: DefaultShmSize).
	ShmSize int64
	// PidsLimit is the most processes (and threads) a container may hold
	// at once, so that a fork bomb in a step stays inside it (0:
	// DefaultPidsLimit; negative: no limit).
	PidsLimit int64
	// StopTimeout is how long a cancelled container has between SIGTERM
	// and SIGKILL (0: 10 s).
	StopTimeout time.Duration
	// MockGPUs: the GPUs are go-nvml's mocks (MLPIPE_GPU_MOCK); a GPU step
	// gets their UUIDs in its environment instead of a device request.
	MockGPUs bool
	// StateDir is the state directory of the runs whose containers this
	// executor creates (LabelStateDir).
	StateDir string
	// Builder is "" (BuildKit when the daemon has it, else the legacy
	// builder), "buildkit" or "legacy" (docker.builder).
	Builder string
	// Pip are the pip settings of the images derived for Python function
	// components (PreparePython).
	Pip pyfunc.Settings
	// PipCacheDir is the host directory of pip's cache, mounted into the
	// containers that derive those images ("" : no cache).
	PipCacheDir string
	// Logger receives the executor's own diagnostics (nil: discarded).
	Logger *slog.Logger
}

// Executor runs tasks in Docker containers and builds, pulls and pushes
// images. It is safe for concurrent use.
type Executor struct {
	cli    *client.Client
	opts   Options
	log    *slog.Logger
	user   string
	pid    int
	start  string // start time of this process (LabelPIDStart)
	host   string
	images imageCache
	// noBuildKit: the daemon refused a BuildKit build (Options.Builder "").
	noBuildKit atomic.Bool
}

var (
	_ contract.Executor      = (*Executor)(nil)
	_ contract.ImageResolver = (*Executor)(nil)
)

// New returns an executor talking to the daemon that the environment names
// (DOCKER_HOST, default the local socket). It does not contact the daemon:
// call Ping to know whether it answers.
func New(opts Options) (*Executor, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return newWithClient(cli, opts), nil
}

// newWithClient wraps a client (tests use one pointed at a fake daemon).
func newWithClient(cli *client.Client, opts Options) *Executor {
	e := &Executor{cli: cli, opts: opts, log: opts.Logger, pid: os.Getpid()}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.opts.ShmSize <= 0 {
		e.opts.ShmSize = DefaultShmSize
	}
	if e.opts.StopTimeout <= 0 {
		e.opts.StopTimeout = 10 * time.Second
	}
	switch opts.User {
	case "":
		e.user = fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	case "image":
		e.user = ""
	default:
		e.user = opts.User
	}
	e.start = procfs.StartTime(e.pid)
	e.host, _ = os.Hostname()
	e.images.entries = map[string]*imageEntry{}
	return e
}

// Name implements contract.Executor.
func (e *Executor) Name() string { return "docker" }

// Properties implements runner.Executor: a container is isolated and runs
// its image's entrypoint when the task has no command.
func (e *Executor) Properties() contract.ExecutorProperties {
	return contract.ExecutorProperties{Isolated: true, RunsEntrypoint: true}
}

// Close releases the client's connections.
func (e *Executor) Close() error { return e.cli.Close() }

// DaemonHost is the address of the daemon the executor talks to.
func (e *Executor) DaemonHost() string { return e.cli.DaemonHost() }

// Ping checks that the daemon answers and negotiates the API version.
func (e *Executor) Ping(ctx context.Context) error {
	if _, err := e.cli.Ping(ctx); err != nil {
		return fmt.Errorf("the Docker daemon at %s does not answer: %w", e.cli.DaemonHost(), err)
	}
	e.cli.NegotiateAPIVersion(ctx)
	return nil
}

// baseLabels are the labels of every container this process creates.
func (e *Executor) baseLabels() map[string]string {
	l := map[string]string{LabelPID: strconv.Itoa(e.pid), LabelHost: e.host, LabelUID: strconv.Itoa(os.Getuid())}
	if e.opts.StateDir != "" {
		l[LabelStateDir] = e.opts.StateDir
	}
	if e.start != "" {
		l[LabelPIDStart] = e.start
	}
	return l
}

// imageCache remembers the images resolved by this executor: each image
// is built, pulled or inspected once, even when tasks ask concurrently.
type imageCache struct {
	mu      sync.Mutex
	entries map[string]*imageEntry
}

type imageEntry struct {
	mu sync.Mutex // held while resolving
	id string
}

// once resolves image with fn unless it has been resolved already. A
// failure is not remembered: the next task tries again.
func (c *imageCache) once(image string, fn func() (string, error)) (string, error) {
	c.mu.Lock()
	ent, ok := c.entries[image]
	if !ok {
		ent = &imageEntry{}
		c.entries[image] = ent
	}
	c.mu.Unlock()
	ent.mu.Lock()
	defer ent.mu.Unlock()
	if ent.id != "" {
		return ent.id, nil
	}
	id, err := fn()
	if err != nil {
		return "", err
	}
	ent.id = id
	return id, nil
}

// notFound reports whether err says the daemon has no such object.
func notFound(err error) bool { return cerrdefs.IsNotFound(err) }

// gone reports whether a removal failed only because the container is
// already gone or another process is removing it (two mlpipe processes
// cleaning up the same orphans at once).
func gone(err error) bool {
	return notFound(err) || strings.Contains(err.Error(), "is already in progress")
}

// ctxErr returns the context's error when it has ended, else err: an
// operation cut short by cancellation reports that, not a transport error.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// discard returns w, or io.Discard for nil.
func discard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}
