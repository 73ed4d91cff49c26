package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/mlpipe/mlpipe/kfpir"
)

// imageChecker tells images that exist only on this machine (built here,
// never pushed: a cluster cannot pull them) and pushes them.
type imageChecker interface {
	// LocalOnly says whether image exists only in the local image store.
	LocalOnly(ctx context.Context, image string) (bool, error)
	// Push pushes image to registry and returns the pinned reference
	// (registry/name@sha256:...).
	Push(ctx context.Context, image, registry string) (pinnedRef string, err error)
}

// submitImageChecker makes the imageChecker (cmd/mlpipe/docker.go sets it;
// tests replace it). While it is nil, submit checks no image and refuses
// --push.
var submitImageChecker func(a *app) (imageChecker, error)

// prepareImages refuses IR whose images exist only on this machine, or,
// with push, pushes them to docker.registry and pins them by digest in
// spec (the document that is submitted).
func prepareImages(ctx context.Context, a *app, ir *kfpir.IR, spec map[string]any, push bool) error {
	if push && a.cfg.Docker.Registry == "" {
		return usagef("--push needs a registry: set docker.registry in the configuration (or MLPIPE_DOCKER_REGISTRY)")
	}
	var checker imageChecker
	if submitImageChecker != nil {
		c, err := submitImageChecker(a)
		if err != nil {
			return fmt.Errorf("check the pipeline's images: %w", err)
		}
		checker = c
	}
	if checker == nil {
		if push {
			return usagef("--push needs Docker, which this build of mlpipe does not have: push the images yourself and reference them by registry")
		}
		return nil
	}
	var local []string
	for _, img := range images(ir) {
		lo, err := checker.LocalOnly(ctx, img)
		if err != nil {
			return fmt.Errorf("check image %s: %w", img, err)
		}
		if lo {
			local = append(local, img)
		}
	}
	if len(local) == 0 {
		return nil
	}
	if !push {
		return usagef("image(s) %s exist only on this machine and a cluster cannot pull them: add --push to push them to docker.registry, or push them yourself", strings.Join(local, ", "))
	}
	reg := a.cfg.Docker.Registry
	if reg == "" {
		return usagef("--push needs a registry: set docker.registry in the configuration (or MLPIPE_DOCKER_REGISTRY)")
	}
	pinned := make(map[string]string, len(local))
	for _, img := range local {
		ref, err := checker.Push(ctx, img, reg)
		if err != nil {
			return fmt.Errorf("push %s to %s: %w", img, reg, err)
		}
		pinned[img] = ref
		fmt.Fprintf(a.stderr, "mlpipe: pushed %s as %s\n", img, ref)
	}
	pinImages(spec, pinned)
	return nil
}

// pinImages rewrites deploymentSpec.executors.*.container.image.
func pinImages(spec map[string]any, pinned map[string]string) {
	dep, _ := spec["deploymentSpec"].(map[string]any)
	execs, _ := dep["executors"].(map[string]any)
	for _, raw := range execs {
		e, _ := raw.(map[string]any)
		c, _ := e["container"].(map[string]any)
		if img, ok := c["image"].(string); ok {
			if ref, ok := pinned[img]; ok {
				c["image"] = ref
			}
		}
	}
}
