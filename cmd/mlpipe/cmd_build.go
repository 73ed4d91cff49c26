package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mlpipe/mlpipe/compiler"
	"github.com/mlpipe/mlpipe/pyfunc"
	"github.com/mlpipe/mlpipe/runner/docker"
)

type buildOptions struct {
	buildArgs []string
	push      bool
	force     bool
}

func newBuildCmd(a *app) *cobra.Command {
	var o buildOptions
	cmd := &cobra.Command{
		Use:   "build [COMPONENT_DIR... | PIPELINE | IR]",
		Short: "Build the images of components that have a Dockerfile, and of Python function components",
		Long: `Build each component directory's Dockerfile through the Docker Engine API and tag the image
with the name its component.yaml gives (implementation.container.image) and with a
content-hash tag (mlpipe-<hash>): a component whose files, build arguments and base images
have not changed is not rebuilt. Without arguments, every directory under components/ that
has a Dockerfile is built.

Given a pipeline (a directory with pipeline.yaml, or its file) or a compiled IR file, build
what its runs need: the images of its components that have a Dockerfile, and, for each
KFP Python function component (@dsl.component), its packages installed ahead of the step:
an image derived from the component's image (Docker; tagged mlpipe/pyfunc:<hash> of the
base image, the pip installs and the pip settings) or a virtual environment under the
state directory (--executor process). Runs then start without pip installing anything.

--push pushes each image to the registry of docker.registry (MLPIPE_DOCKER_REGISTRY) and
prints the reference pinned by digest.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuild(cmd.Context(), a, o, args)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.buildArgs, "build-arg", nil, "build argument K=V (repeatable; K alone takes the value of $K)")
	f.BoolVar(&o.push, "push", false, "push the images to docker.registry")
	f.BoolVar(&o.force, "force", false, "build even when an image of the same content exists")
	return cmd
}

// buildTarget is one component directory to build.
type buildTarget struct {
	dir, image string
}

func runBuild(ctx context.Context, a *app, o buildOptions, dirs []string) error {
	buildArgs, err := parseBuildArgs(o.buildArgs)
	if err != nil {
		return err
	}
	if o.push && a.cfg.Docker.Registry == "" {
		return usagef("--push needs a registry: set docker.registry in the configuration (or MLPIPE_DOCKER_REGISTRY)")
	}
	if len(dirs) == 1 && isPipelineSource(dirs[0]) {
		return runBuildPipeline(ctx, a, o, buildArgs, dirs[0])
	}
	if len(dirs) == 0 {
		if dirs, err = defaultComponentDirs("components"); err != nil {
			return err
		}
	}
	targets := make([]buildTarget, 0, len(dirs))
	for _, d := range dirs {
		t, err := componentToBuild(d)
		if err != nil {
			return err
		}
		targets = append(targets, t)
	}
	ex, err := a.newDocker(ctx, docker.Options{})
	if err != nil {
		return fmt.Errorf("mlpipe build needs Docker: %w", err)
	}
	defer ex.Close()
	for _, t := range targets {
		res, err := ex.Build(ctx, docker.BuildRequest{Dir: t.dir, Image: t.image, Args: buildArgs, Force: o.force}, a.stderr)
		if err != nil {
			return err
		}
		state := "up to date"
		if res.Built {
			state = "built"
		}
		fmt.Fprintf(a.stdout, "%s %s %s (%s)\n", t.image, strings.TrimPrefix(res.ID, "sha256:")[:12], state, res.HashTag)
		if o.push {
			ref, err := ex.Push(ctx, t.image, a.cfg.Docker.Registry, a.stderr)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s pushed as %s\n", t.image, ref)
		}
	}
	return nil
}

// componentToBuild loads the component of a directory and checks it can be
// built.
func componentToBuild(dir string) (buildTarget, error) {
	c, err := compiler.LoadComponent(dir)
	if err != nil {
		return buildTarget{}, usageError{err}
	}
	switch {
	case c.Dockerfile == "":
		return buildTarget{}, usagef("%s has no Dockerfile to build", dir)
	case c.Container == nil || c.Container.Image == "":
		return buildTarget{}, usagef("%s: the component names no image (implementation.container.image) to tag the build with", dir)
	}
	return buildTarget{dir: c.Dir, image: c.Container.Image}, nil
}

// defaultComponentDirs lists the directories under root that have a
// Dockerfile.
func defaultComponentDirs(root string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(root, "*", "Dockerfile"))
	if err != nil {
		return nil, err
	}
	dirs := make([]string, 0, len(matches))
	for _, m := range matches {
		dirs = append(dirs, filepath.Dir(m))
	}
	sort.Strings(dirs)
	if len(dirs) == 0 {
		return nil, usagef("build: no component directory given, and no directory under %s/ has a Dockerfile", root)
	}
	return dirs, nil
}

// parseBuildArgs parses --build-arg values: K=V, or K alone for the value
// of the environment variable K (left out when it is not set).
func parseBuildArgs(list []string) (map[string]*string, error) {
	if len(list) == 0 {
		return nil, nil
	}
	out := map[string]*string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if k == "" {
			return nil, usagef("--build-arg %q: expected KEY=VALUE or KEY", kv)
		}
		if !ok {
			env, set := os.LookupEnv(k)
			if !set {
				continue
			}
			v = env
		}
		out[k] = &v
	}
	return out, nil
}

// isPipelineSource reports whether path is a pipeline or an IR file
// rather than a component directory.
func isPipelineSource(path string) bool {
	st, err := os.Stat(path)
	if err != nil {
		return false
	}
	if st.IsDir() {
		_, err := os.Stat(filepath.Join(path, "pipeline.yaml"))
		return err == nil
	}
	return true
}

// runBuildPipeline builds what the runs of a pipeline or IR need: its
// component images and its Python function components' packages.
func runBuildPipeline(ctx context.Context, a *app, o buildOptions, buildArgs map[string]*string, source string) error {
	ir, err := compiler.Open(source)
	if err != nil {
		return err
	}
	contexts, err := buildContexts(source)
	if err != nil {
		return err
	}
	reqs := pythonRequests(ir)
	if len(contexts) == 0 && len(reqs) == 0 {
		fmt.Fprintf(a.stdout, "%s: nothing to build (no component with a Dockerfile, no Python function component)\n", source)
		return nil
	}
	ex, done, err := a.pythonExecutor(ctx, contexts)
	if err != nil {
		return fmt.Errorf("mlpipe build needs Docker (or --executor process for Python function components): %w", err)
	}
	defer done()
	if dex, ok := ex.(*docker.Executor); ok {
		for _, img := range slices.Sorted(maps.Keys(contexts)) {
			res, err := dex.Build(ctx, docker.BuildRequest{Dir: contexts[img], Image: img, Args: buildArgs, Force: o.force}, a.stderr)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s %s %s (%s)\n", img, strings.TrimPrefix(res.ID, "sha256:")[:12], map[bool]string{true: "built", false: "up to date"}[res.Built], res.HashTag)
		}
	}
	for _, req := range reqs {
		env, err := ex.PreparePython(ctx, req, a.stderr)
		if err != nil {
			return err
		}
		state := "up to date"
		if env.Built {
			state = "built"
		}
		fmt.Fprintf(a.stdout, "%s python %s: %s %s\n", req.Component, pyfunc.Display(req.Packages), env.Ref, state)
	}
	return nil
}
