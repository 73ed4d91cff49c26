package docker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
)

// ResolveImage implements runner.ImageResolver: it builds the image when a
// component directory builds it (Options.BuildContexts), else uses the
// local image or pulls it, and returns the image ID. Each image is
// resolved once per Executor; build and pull output goes to log.
func (e *Executor) ResolveImage(ctx context.Context, img string, log io.Writer) (string, error) {
	if img == "" {
		return "", errors.New("the task names no container image; the docker executor needs one")
	}
	return e.images.once(img, func() (string, error) {
		if dir, ok := e.opts.BuildContexts[img]; ok {
			args := e.opts.BuildArgs
			if args == nil {
				args = e.lastBuildArgs(ctx, img)
			}
			res, err := e.Build(ctx, BuildRequest{Dir: dir, Image: img, Args: args}, log)
			if err != nil {
				return "", err
			}
			return res.ID, nil
		}
		return e.ensureImage(ctx, img, log)
	})
}

// lastBuildArgs returns the build arguments the local image img was last
// built with by mlpipe (LabelBuildArgs), so that `mlpipe build
// --build-arg ...` once is enough: later runs rebuild a changed component
// with the same arguments.
func (e *Executor) lastBuildArgs(ctx context.Context, img string) map[string]*string {
	info, err := e.cli.ImageInspect(ctx, img)
	if err != nil || info.Config == nil || info.Config.Labels[LabelBuildArgs] == "" {
		return nil
	}
	var args map[string]*string
	if err := json.Unmarshal([]byte(info.Config.Labels[LabelBuildArgs]), &args); err != nil {
		e.log.WarnContext(ctx, "unreadable build arguments label", "image", img, "error", err)
		return nil
	}
	return args
}

// ensureImage returns the ID of a local image, pulling it first when it is
// not local.
func (e *Executor) ensureImage(ctx context.Context, img string, log io.Writer) (string, error) {
	info, err := e.cli.ImageInspect(ctx, img)
	if err == nil {
		return info.ID, nil
	}
	if !notFound(err) {
		return "", fmt.Errorf("inspect image %s: %w", img, ctxErr(ctx, err))
	}
	fmt.Fprintf(discard(log), "pulling %s\n", img)
	if err := e.pull(ctx, img, log); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("image %s is neither local nor pullable (build it, e.g. with mlpipe build or docker build, or load it with docker load): %w", img, err)
	}
	info, err = e.cli.ImageInspect(ctx, img)
	if err != nil {
		return "", fmt.Errorf("inspect image %s after pulling it: %w", img, ctxErr(ctx, err))
	}
	return info.ID, nil
}

// pull pulls an image, writing its progress to log.
func (e *Executor) pull(ctx context.Context, img string, log io.Writer) error {
	rc, err := e.cli.ImagePull(ctx, img, image.PullOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = readStream(rc, log)
	return err
}

// ImageID returns the ID of a local image, or "" when there is none.
func (e *Executor) ImageID(ctx context.Context, img string) (string, error) {
	info, err := e.cli.ImageInspect(ctx, img)
	if notFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("inspect image %s: %w", img, ctxErr(ctx, err))
	}
	return info.ID, nil
}

// LocalOnly reports whether an image exists only in the local image store:
// it is present, was never pushed to or pulled from a registry (no
// RepoDigests), and is not a local stand-in for a public image
// (LabelStandIn). An image that is not present at all is not local-only:
// a cluster may well pull it.
func (e *Executor) LocalOnly(ctx context.Context, img string) (bool, error) {
	info, err := e.cli.ImageInspect(ctx, img)
	if notFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("inspect image %s: %w", img, ctxErr(ctx, err))
	}
	if len(info.RepoDigests) > 0 {
		return false, nil
	}
	if info.Config != nil && standsIn(info.Config.Labels[LabelStandIn], img) {
		return false, nil
	}
	return true, nil
}

// standsIn reports whether img is one of the references a stand-in label
// lists.
func standsIn(label, img string) bool {
	want := normalize(img)
	for _, r := range strings.Split(label, ",") {
		if r = strings.TrimSpace(r); r != "" && normalize(r) == want {
			return true
		}
	}
	return false
}

// normalize returns the full form of a reference (docker.io/library/x:latest).
func normalize(ref string) string {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return reference.TagNameOnly(n).String()
}

// PushTarget is the reference an image gets in a registry: the registry
// (host and optional path) followed by the image's name and tag, e.g.
// "busybox:1.36" and "registry.example.com/team" give
// "registry.example.com/team/busybox:1.36".
func PushTarget(img, registryPrefix string) (string, error) {
	n, err := reference.ParseNormalizedNamed(img)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", img, err)
	}
	if _, ok := n.(reference.Digested); ok {
		return "", fmt.Errorf("image %s is referenced by digest and cannot be retagged for a push", img)
	}
	tagged := reference.TagNameOnly(n).(reference.Tagged)
	path := reference.Path(n)
	if reference.Domain(n) == "docker.io" {
		path = strings.TrimPrefix(path, "library/")
	}
	prefix := strings.TrimSuffix(registryPrefix, "/")
	prefix = strings.TrimPrefix(strings.TrimPrefix(prefix, "https://"), "http://")
	target := prefix + "/" + path + ":" + tagged.Tag()
	if _, err := reference.ParseNormalizedNamed(target); err != nil {
		return "", fmt.Errorf("push target %q for image %s: %w", target, img, err)
	}
	return target, nil
}

// Push tags img for the registry, pushes it and returns the reference
// pinned by digest (registry/name@sha256:...). Credentials come from the
// Docker CLI's config.json (auths) when it has some for the registry host.
func (e *Executor) Push(ctx context.Context, img, registryPrefix string, log io.Writer) (string, error) {
	target, err := PushTarget(img, registryPrefix)
	if err != nil {
		return "", err
	}
	if err := e.cli.ImageTag(ctx, img, target); err != nil {
		return "", fmt.Errorf("tag image %s as %s: %w", img, target, ctxErr(ctx, err))
	}
	named, _ := reference.ParseNormalizedNamed(target)
	auth, err := registryAuth(reference.Domain(named))
	if err != nil {
		return "", err
	}
	rc, err := e.cli.ImagePush(ctx, target, image.PushOptions{RegistryAuth: auth})
	if err != nil {
		return "", fmt.Errorf("push image %s: %w", target, ctxErr(ctx, err))
	}
	defer rc.Close()
	digest, err := readStream(rc, log)
	if err != nil {
		return "", fmt.Errorf("push image %s: %w", target, ctxErr(ctx, err))
	}
	if digest == "" {
		// Older daemons: the digest is in the image's RepoDigests.
		info, err := e.cli.ImageInspect(ctx, target)
		if err != nil {
			return "", fmt.Errorf("inspect image %s after pushing it: %w", target, ctxErr(ctx, err))
		}
		for _, rd := range info.RepoDigests {
			if name, d, ok := strings.Cut(rd, "@"); ok && normalizeName(name) == normalizeName(target) {
				digest = d
			}
		}
		if digest == "" {
			return "", fmt.Errorf("push image %s: the daemon reported no digest", target)
		}
	}
	return reference.FamiliarName(named) + "@" + digest, nil
}

func normalizeName(ref string) string {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	return n.Name()
}

// registryAuth returns the X-Registry-Auth value for a registry host: the
// credentials of ~/.docker/config.json (or $DOCKER_CONFIG) when it has an
// "auths" entry for the host, else an empty configuration (the daemon then
// pushes anonymously). Credential helpers are not consulted.
func registryAuth(host string) (string, error) {
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return registry.EncodeAuthConfig(registry.AuthConfig{})
		}
		dir = filepath.Join(home, ".docker")
	}
	ac, err := authFromConfig(filepath.Join(dir, "config.json"), host)
	if err != nil {
		return "", err
	}
	return registry.EncodeAuthConfig(ac)
}

// authFromConfig reads the credentials for host from a Docker CLI
// config.json; a missing file or entry gives an empty configuration.
func authFromConfig(file, host string) (registry.AuthConfig, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return registry.AuthConfig{}, nil
	}
	if err != nil {
		return registry.AuthConfig{}, fmt.Errorf("read docker credentials: %w", err)
	}
	var cf struct {
		Auths map[string]struct {
			Auth          string `json:"auth"`
			IdentityToken string `json:"identitytoken"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(b, &cf); err != nil {
		return registry.AuthConfig{}, fmt.Errorf("read docker credentials %s: %w", file, err)
	}
	for key, a := range cf.Auths {
		k := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://"), "/")
		k, _, _ = strings.Cut(k, "/")
		if k != host && !(host == "docker.io" && k == "index.docker.io") {
			continue
		}
		ac := registry.AuthConfig{ServerAddress: key, IdentityToken: a.IdentityToken}
		if a.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(a.Auth)
			if err != nil {
				return registry.AuthConfig{}, fmt.Errorf("read docker credentials %s: auth for %s: %w", file, key, err)
			}
			ac.Username, ac.Password, _ = strings.Cut(string(raw), ":")
		}
		return ac, nil
	}
	return registry.AuthConfig{}, nil
}
