package contract

import (
	"context"
	"errors"
	"io"
	"time"
)

// State is the state of a run or a task.
type State string

// States (docs/architecture.md, "Run history schema").
const (
	Pending   State = "PENDING"
	Running   State = "RUNNING"
	Succeeded State = "SUCCEEDED"
	Failed    State = "FAILED"
	Skipped   State = "SKIPPED"
	Cached    State = "CACHED"
	Canceled  State = "CANCELED"
)

// Final reports whether the state is terminal.
func (s State) Final() bool {
	switch s {
	case Succeeded, Failed, Skipped, Cached, Canceled:
		return true
	}
	return false
}

// OK reports whether the state counts as success for dependents.
func (s State) OK() bool { return s == Succeeded || s == Cached }

// Executor runs one resolved container task to completion. It blocks;
// cancelling ctx stops the process or container (gracefully, then by force)
// and Run returns promptly.
type Executor interface {
	// Name is "process" or "docker", for people (logs, the history); the
	// engine asks Properties what the executor does.
	Name() string
	Properties() ExecutorProperties
	Run(ctx context.Context, t *ExecTask) (*ExecResult, error)
}

// ExecutorProperties are what the engine needs to know of an executor.
type ExecutorProperties struct {
	// Isolated executors run a step in a file system of its own (a
	// container): it sees the task directory and its inputs only through
	// mounts, at KFP's local paths, inputs read-only, and a path it names
	// (a customPath) means nothing on the host. Otherwise the step runs
	// on the host, sees host paths, and can change what it reads.
	Isolated bool
	// RunsEntrypoint executors run an image's entrypoint for a task
	// without a command.
	RunsEntrypoint bool
}

// ExecTask is everything an executor needs to run one attempt of a task.
type ExecTask struct {
	RunID    string
	Pipeline string
	TaskPath string // unique path of the task in the run, e.g. exit-handler-1/train
	Name     string // display name
	Attempt  int
	Image    string
	Command  []string // resolved; Kubernetes semantics (replaces ENTRYPOINT)
	Args     []string // resolved; (replaces CMD)
	Env      []string // KEY=VALUE, container env after the executor's own
	Dir      string   // working directory on the host (the task's root directory when it has one)
	// ExecutorInput is the task's ExecutorInput as JSON (also written to
	// executor_input.json in the task directory when there is one).
	ExecutorInput []byte
	Mounts        []Mount  // host paths the task reads or writes, for container executors
	CPU           float64  // cores (limit), 0 = unlimited
	Memory        int64    // bytes (limit), 0 = unlimited
	GPUs          []string // UUIDs of the GPUs leased to this attempt
	ShmSize       int64    // /dev/shm size in bytes for container executors (0: the executor's default)
	// Labels are added to the container's labels (the IR's pod metadata).
	Labels map[string]string
	// GPULease carries files that keep GPU leases alive as long as the
	// process lives (process executor: inherited lock files).
	GPULease GPULease
	Stdout   io.Writer
	Stderr   io.Writer
	// Phase is called when the executor starts and ends a phase of the
	// attempt ("image", "create", "start", "execute", "teardown").
	Phase func(name string, start, end time.Time)
	// Started is called once the user's code is running, with an id the
	// GPU leases can record (a PID or a container id).
	Started func(id string)
}

// Mount is a host path made visible to a task.
type Mount struct {
	HostPath      string
	ContainerPath string
	ReadOnly      bool
	// Tmpfs mounts an empty in-memory file system at ContainerPath
	// instead (no HostPath), of at most TmpfsSize bytes (0: the
	// engine's default).
	Tmpfs     bool
	TmpfsSize int64
}

// ExecResult is how an attempt ended.
type ExecResult struct {
	ExitCode    int
	OOMKilled   bool
	Signal      string
	ImageDigest string // image ID, when the executor knows it
	Message     string // why it failed, beyond the exit code
}

// Collector is implemented by executors whose steps outlive a killed
// mlpipe (a Docker container runs on without it). When a run is resumed,
// an attempt that the dead mlpipe had started and that then ran to
// completion is collected (its outputs are in the task directory) rather
// than run again.
type Collector interface {
	// Finished reports whether attempt of the run's task finished with
	// exit code 0 after its mlpipe died, from the image imageID (when
	// not empty), and is still there to collect.
	Finished(ctx context.Context, runID, taskPath string, attempt int, imageID string) bool
	// Collect stands for Run for such an attempt: it checks that the
	// attempt is t (image, command, arguments, environment), writes its
	// whole output to t.Stdout and t.Stderr, removes what is left of it
	// and returns its result. ErrNotCollectable says it is not t: the
	// attempt must run.
	Collect(ctx context.Context, t *ExecTask) (*ExecResult, error)
}

// ErrNotCollectable is Collector.Collect's answer for an attempt that is
// not the one the dead run started.
var ErrNotCollectable = errors.New("the finished attempt does not match the task")

// ImageResolver is implemented by executors that can tell an image's
// digest before running it (Docker); the digest enters the cache key.
type ImageResolver interface {
	ResolveImage(ctx context.Context, image string, log io.Writer) (digest string, err error)
}

// GPURequest asks for GPUs for one task.
type GPURequest struct {
	RunID, Task string
	Count       int
	Type        string // "nvidia.com/gpu", a model name such as NVIDIA_TESLA_A100, or ""
	// Waiting, when set, is told why the request waits, each time that
	// changes ("waiting for 2 GPU(s): 0 of 8 free, held by bob (run ..., task train)").
	Waiting func(message string)
}

// GPULease is a set of leased GPUs; Release returns them.
type GPULease interface {
	UUIDs() []string
	// Files are lock files a child process may inherit to keep the lease.
	Files() []ExtraFile
	SetHolder(id string)
	Release()
}

// ExtraFile is an open file descriptor handed to a child process.
type ExtraFile interface {
	Fd() uintptr
	Name() string
}

// GPUAllocator leases GPUs. Acquire blocks until the GPUs are free or ctx
// ends. Check tells before a run whether a request can ever be met.
type GPUAllocator interface {
	Acquire(ctx context.Context, req GPURequest) (GPULease, error)
	Check(req GPURequest) error
	// Sample returns utilisation samples of the given GPUs between calls
	// of the returned stop function (nil if sampling is not supported).
	Sample(ctx context.Context, uuids []string) (stop func() []GPUSample)
}

// GPUSample is one reading of one GPU.
type GPUSample struct {
	Time       time.Time `json:"t"`
	UUID       string    `json:"uuid"`
	Util       float64   `json:"util"` // percent, -1 when not available (MIG)
	MemUsed    int64     `json:"mem_used"`
	PowerWatts float64   `json:"power_w"`
	EnergyJ    float64   `json:"energy_j,omitempty"` // cumulative since the step began
}

// ArtifactStore keeps a run's artifacts. URIs are what the executor input
// carries: absolute host paths for the local store, minio://, s3:// for
// object stores.
type ArtifactStore interface {
	// Root is the pipeline root: the URI prefix every run's artifacts are
	// under ({{$.pipeline_root}}).
	Root() string
	// RunRoot is the URI prefix of the artifacts of one run.
	RunRoot(pipeline, runID string) string
	// Remote reports whether artifacts must be staged in and out of the
	// task's directory (object stores) rather than used in place.
	Remote() bool
	// Put finalises an output artifact written at localPath: uploads it (if
	// remote) and returns its digest and size. A directory is stored as
	// a directory artifact.
	Put(ctx context.Context, uri, localPath string) (ArtifactInfo, error)
	// Create is Put where nothing may be replaced: an error matching
	// ErrArtifactExists when something is stored at uri or under it.
	// Stores make it atomic as far as they can (the local store against
	// other processes too; see each store's documentation).
	Create(ctx context.Context, uri, localPath string) (ArtifactInfo, error)
	// Get stages an artifact into localPath (remote stores) and verifies
	// its digest when want is not empty.
	Get(ctx context.Context, uri, localPath, want string) (ArtifactInfo, error)
	// Stat returns the info of a stored artifact; an error matching
	// ErrArtifactNotFound when it is missing.
	Stat(ctx context.Context, uri string) (ArtifactInfo, error)
	// Delete removes every artifact under a URI prefix.
	Delete(ctx context.Context, prefix string) error
	// Exists reports whether anything is stored at uri or under it (uri
	// as a prefix of other artifacts counts).
	Exists(ctx context.Context, uri string) (bool, error)
	// Digest digests a local file or directory as the store digests what
	// it keeps.
	Digest(ctx context.Context, localPath string) (ArtifactInfo, error)
}

// ErrArtifactNotFound is what stores return (wrapped) for an artifact that
// does not exist; storage.ErrNotFound is the same error.
var ErrArtifactNotFound = errors.New("artifact not found")

// ErrArtifactExists is what a store's Create returns (wrapped) when
// something is stored at the URI already.
var ErrArtifactExists = errors.New("artifact exists")

// ErrDigestMismatch is what stores return (wrapped) when an artifact's
// content does not match the digest asked for; storage.ErrDigestMismatch
// is the same error.
var ErrDigestMismatch = errors.New("artifact digest mismatch")

// ArtifactInfo describes a stored artifact.
type ArtifactInfo struct {
	Digest string // "sha256:<hex>"
	Size   int64
	Dir    bool
}

// Event is a state change of a task or of the run.
type Event struct {
	Time     time.Time      `json:"time"`
	RunID    string         `json:"run_id"`
	Task     string         `json:"task,omitempty"` // display path; empty for the run itself
	Path     string         `json:"path,omitempty"`
	Kind     string         `json:"kind,omitempty"` // "dag" for a group (condition, loop, sub-DAG); empty for a step
	State    State          `json:"state"`
	Attempt  int            `json:"attempt,omitempty"`
	Message  string         `json:"message,omitempty"`
	Duration time.Duration  `json:"-"`
	DurMS    int64          `json:"duration_ms,omitempty"`
	Outputs  map[string]any `json:"outputs,omitempty"`
	GPUs     []string       `json:"gpus,omitempty"`
}

// PythonPreparer is implemented by executors that install a KFP Python
// function component's packages before its steps run (pyfunc): the Docker
// executor derives an image, the process executor a cached virtual
// environment. The step's own pip prologue then finds every requirement
// satisfied and makes no network call.
type PythonPreparer interface {
	PreparePython(ctx context.Context, req PythonRequest, log io.Writer) (PythonEnv, error)
}

// PythonRequest asks for the packages of one Python function component.
type PythonRequest struct {
	Component string     // the component's name, for messages ("comp-train")
	Image     string     // the component's image (container executors)
	Installs  [][]string // the arguments of each pip install, in order (pyfunc.Install.PipArgs)
	Packages  []string   // every requirement, for messages
	Key       string     // identifies what is installed (pyfunc.Component.Key)
}

// PythonEnv is what PreparePython prepared.
type PythonEnv struct {
	// Image is the image to run instead of the component's (Docker).
	Image string
	// Env is added to the step's environment (process: PATH and
	// VIRTUAL_ENV of the virtual environment).
	Env []string
	// Ref names what was prepared for people: an image tag, a directory.
	Ref string
	// Built is false when it existed already.
	Built bool
}
