package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	units "github.com/docker/go-units"

	"github.com/mlpipe/mlpipe/compiler"
	"github.com/mlpipe/mlpipe/kfpir"
	"github.com/mlpipe/mlpipe/pyfunc"
	"github.com/mlpipe/mlpipe/runner"
	"github.com/mlpipe/mlpipe/runner/docker"
)

// The Docker executor names a Python function component's derived image
// before making it, so that the runner looks the task up in the cache first.
var _ runner.PythonImageNamer = (*docker.Executor)(nil)

// dockerPingTimeout bounds the check that the daemon answers.
const dockerPingTimeout = 3 * time.Second

func init() {
	submitImageChecker = dockerImageChecker
	containerAlive = dockerContainerAlive
}

// dockerContainerAlive asks the daemon whether a container runs. A daemon
// that does not answer runs no containers (short of live-restore), so the
// lease is then taken as stale rather than blocking the GPU for ever.
func dockerContainerAlive(id string) bool {
	ex, err := docker.New(docker.Options{})
	if err != nil {
		return false
	}
	defer ex.Close()
	ctx, cancel := context.WithTimeout(context.Background(), dockerPingTimeout)
	defer cancel()
	return ex.ContainerRunning(ctx, id)
}

// newDocker returns a Docker executor configured from docker.* settings
// and checks that the daemon answers; the error says why Docker is not
// usable.
func (a *app) newDocker(ctx context.Context, opts docker.Options) (*docker.Executor, error) {
	shm, err := units.RAMInBytes(a.cfg.Docker.ShmSize)
	if err != nil || shm <= 0 {
		return nil, usagef("docker.shm_size %q is not a size such as 1g or 512m", a.cfg.Docker.ShmSize)
	}
	opts.ShmSize = shm
	opts.PidsLimit = a.cfg.Docker.PidsLimit
	opts.User = a.cfg.Docker.User
	switch a.cfg.Docker.Builder {
	case "", "buildkit", "legacy":
		opts.Builder = a.cfg.Docker.Builder
	default:
		return nil, usagef("docker.builder %q must be buildkit or legacy (or empty: BuildKit when the daemon has it)", a.cfg.Docker.Builder)
	}
	opts.StateDir = a.cfg.StateDir
	opts.MockGPUs = a.cfg.GPU.Mock != ""
	opts.Logger = a.log
	opts.Pip = pyfunc.SettingsFromEnv(a.cfg.Python.PipConf)
	opts.PipCacheDir = filepath.Join(a.cfg.StateDir, "cache", "pip")
	ex, err := docker.New(opts)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, dockerPingTimeout)
	defer cancel()
	if err := ex.Ping(pctx); err != nil {
		ex.Close()
		return nil, err
	}
	return ex, nil
}

// dockerExecutor returns the Docker executor for a run. When the run's
// source is a pipeline.yaml, the components of it (and of its
// sub-pipelines) that have a Dockerfile are built by the executor before
// their tasks run. Containers left by mlpipe processes that died are
// removed first, except, when the run resumes run resumeRun, those of
// that run that exited with code 0: the resume collects them. On a forced
// exit (a second Ctrl-C) the executor's containers are removed.
func (a *app) dockerExecutor(ctx context.Context, ir *kfpir.IR, source, resumeRun string) (runner.Executor, error) {
	contexts, err := buildContexts(source)
	if err != nil {
		return nil, err
	}
	ex, err := a.newDocker(ctx, docker.Options{BuildContexts: contexts})
	if err != nil {
		return nil, err
	}
	onForcedExit(func(ctx context.Context) {
		if n, err := ex.RemoveOwn(ctx); err != nil {
			fmt.Fprintf(a.stderr, "mlpipe: remove the containers: %v\n", err)
		} else if n > 0 {
			fmt.Fprintf(a.stderr, "mlpipe: removed %d container(s)\n", n)
		}
	})
	if n, err := ex.CleanupKeeping(ctx, resumeRun); err != nil {
		a.log.WarnContext(ctx, "clean up containers of earlier mlpipe processes", "error", err)
	} else if n > 0 {
		fmt.Fprintf(a.stderr, "mlpipe: removed %d container(s) left by mlpipe processes that are gone\n", n)
	}
	return ex, nil
}

// buildContexts maps each image that a component directory of the
// pipeline builds (a component.yaml beside a Dockerfile) to that
// directory. Sources other than a pipeline.yaml (compiled IR) build
// nothing: their images must exist (mlpipe build) or be pullable.
func buildContexts(source string) (map[string]string, error) {
	if source == "" {
		return nil, nil
	}
	file := source
	if st, err := os.Stat(source); err == nil && st.IsDir() {
		file = filepath.Join(source, "pipeline.yaml")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, nil // the run reports unreadable sources itself
	}
	if kind, err := compiler.DetectKind(file, b); err != nil || kind != compiler.KindPipeline {
		return nil, nil
	}
	p, err := compiler.LoadPipeline(file)
	if err != nil {
		return nil, fmt.Errorf("find the component images to build: %w", err)
	}
	out := map[string]string{}
	seen := map[*compiler.Pipeline]bool{}
	var walk func(p *compiler.Pipeline) error
	walk = func(p *compiler.Pipeline) error {
		if seen[p] {
			return nil
		}
		seen[p] = true
		for _, t := range append(append([]*compiler.Task(nil), p.Tasks...), p.Finally...) {
			c := t.Component
			switch {
			case c == nil:
			case c.Pipeline != nil:
				if err := walk(c.Pipeline); err != nil {
					return err
				}
			case c.Dockerfile != "" && c.Container != nil && c.Container.Image != "":
				img := c.Container.Image
				if prev, ok := out[img]; ok && prev != c.Dir {
					return fmt.Errorf("image %s is built by two component directories, %s and %s: give them different image names", img, prev, c.Dir)
				}
				out[img] = c.Dir
			}
		}
		return nil
	}
	if err := walk(p); err != nil {
		return nil, err
	}
	return out, nil
}

// dockerImageChecker is submit's imageChecker: an image is local-only
// when the daemon has it without RepoDigests (see docker.LocalOnly). When
// Docker is not usable no image can be checked, and --push fails.
func dockerImageChecker(a *app) (imageChecker, error) {
	ex, err := a.newDocker(context.Background(), docker.Options{})
	if err != nil {
		a.log.Debug("images not checked: Docker is not usable", "error", err)
		return noDocker{err}, nil
	}
	return dockerImages{ex: ex, log: a.stderr}, nil
}

type dockerImages struct {
	ex  *docker.Executor
	log io.Writer
}

func (d dockerImages) LocalOnly(ctx context.Context, image string) (bool, error) {
	return d.ex.LocalOnly(ctx, image)
}

func (d dockerImages) Push(ctx context.Context, image, registry string) (string, error) {
	return d.ex.Push(ctx, image, registry, d.log)
}

// noDocker checks nothing and cannot push.
type noDocker struct{ why error }

func (noDocker) LocalOnly(context.Context, string) (bool, error) { return false, nil }

func (n noDocker) Push(_ context.Context, image, _ string) (string, error) {
	return "", fmt.Errorf("pushing needs Docker: %w", n.why)
}
