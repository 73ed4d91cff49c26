package docker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/mlpipe/mlpipe/contract"
	"github.com/mlpipe/mlpipe/pyfunc"
)

// Labels of the images derived for Python function components.
const (
	// LabelPyfunc holds the pip installs the image was derived with
	// (pyfunc.Component.Key).
	LabelPyfunc = "mlpipe.pyfunc"
	// LabelPyfuncBase names the image it was derived from.
	LabelPyfuncBase = "mlpipe.pyfunc.base"
)

// PyfuncRepo is the repository of derived images; each is tagged by the
// content hash of (base image ID, pip installs, pip settings).
const PyfuncRepo = "mlpipe/pyfunc"

// pyfuncVersion enters the hash: a change to how images are derived
// derives them again.
const pyfuncVersion = "1"

// Paths inside the container that derives an image.
const (
	pipCacheTarget = "/mlpipe-build/pip-cache"
	pipConfTarget  = "/mlpipe-build/pip.conf"
	pipEnvTarget   = "/mlpipe-build/pip.env"
)

var _ contract.PythonPreparer = (*Executor)(nil)

// PythonTag returns the tag of the image derived from the base image
// baseID for req, and whether it exists.
func (e *Executor) PythonTag(ctx context.Context, baseID string, req contract.PythonRequest) (string, bool, error) {
	settings, err := e.opts.Pip.Digest()
	if err != nil {
		return "", false, err
	}
	h := sha256.New()
	fmt.Fprintf(h, "mlpipe pyfunc %s\nbase %s\nsettings %s\n%s", pyfuncVersion, baseID, settings, req.Key)
	tag := PyfuncRepo + ":" + hex.EncodeToString(h.Sum(nil))[:16]
	id, err := e.ImageID(ctx, tag)
	return tag, id != "", err
}

// PreparePython implements contract.PythonPreparer: it derives an image
// from the component's image with the component's pip installs made, once
// per (base image ID, installs, pip settings), and returns its tag.
//
// The image is derived by running the installs in a container of the base
// image and committing it, not by a Dockerfile build: the user's pip
// settings (index URLs may hold tokens) reach pip through a file mounted
// for the install only, so they are in no layer, no build argument and no
// image history; the pip cache is a host directory mounted into every such
// container, so adding one package does not download the others again,
// with the legacy builder and BuildKit alike; local wheel directories
// (PIP_FIND_LINKS) are mounted read-only at their paths; and the container
// uses the host's network, so an index on localhost works.
func (e *Executor) PreparePython(ctx context.Context, req contract.PythonRequest, log io.Writer) (contract.PythonEnv, error) {
	log = discard(log)
	baseID, err := e.ResolveImage(ctx, req.Image, log)
	if err != nil {
		return contract.PythonEnv{}, err
	}
	tag, exists, err := e.PythonTag(ctx, baseID, req)
	if err != nil {
		return contract.PythonEnv{}, err
	}
	env := contract.PythonEnv{Image: tag, Ref: tag}
	// Memoized as ResolveImage memoizes any image: the tag's image ID (the
	// digest recorded with the task's attempts).
	_, err = e.images.once(tag, func() (string, error) {
		if !exists {
			if err := e.derive(ctx, baseID, tag, req, log); err != nil {
				return "", err
			}
			env.Built = true
		}
		id, err := e.ImageID(ctx, tag)
		if err == nil && id == "" {
			err = fmt.Errorf("image %s is gone", tag)
		}
		return id, err
	})
	return env, err
}

// derive runs the installs in a container of baseID and commits it as tag.
func (e *Executor) derive(ctx context.Context, baseID, tag string, req contract.PythonRequest, log io.Writer) error {
	base, err := e.cli.ImageInspect(ctx, baseID)
	if err != nil {
		return fmt.Errorf("inspect image %s: %w", req.Image, ctxErr(ctx, err))
	}
	tmp, err := os.MkdirTemp("", "mlpipe-pyfunc-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	mounts, err := e.pipMounts(tmp)
	if err != nil {
		return err
	}
	script := deriveScript(req.Installs, os.Getuid(), os.Getgid())
	// The daemon merges the container's labels into the committed image:
	// give it only the image's own.
	labels := map[string]string{LabelPyfunc: req.Key, LabelPyfuncBase: req.Image}
	cfg := &container.Config{
		Image:      baseID,
		Entrypoint: []string{"/bin/sh", "-c", script},
		Cmd:        []string{},
		Labels:     labels,
		WorkingDir: "/",
	}
	// The installs run code of the IR's packages: the same process limit
	// as steps; the host's network only when pip must reach an index or
	// wheel server on this machine (localhost is not the host's in a
	// container of its own).
	hc := &container.HostConfig{Mounts: mounts, Init: boolPtr(true)}
	hc.PidsLimit = ptr(int64(DefaultPidsLimit))
	if e.opts.PidsLimit > 0 {
		hc.PidsLimit = ptr(e.opts.PidsLimit)
	}
	if needsHostNetwork(e.opts.Pip, req.Installs) {
		hc.NetworkMode = "host"
	}
	bg := context.WithoutCancel(ctx)
	fmt.Fprintf(log, "deriving %s from %s for %s: pip install %s\n", tag, req.Image, req.Component, pyfunc.Display(req.Packages))
	created, err := e.cli.ContainerCreate(bg, cfg, hc, nil, nil, "")
	if err != nil {
		return fmt.Errorf("component %s: create a container from %s to install its packages: %w", req.Component, req.Image, err)
	}
	defer func() {
		if err := e.cli.ContainerRemove(bg, created.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !gone(err) {
			e.log.WarnContext(ctx, "remove container", "container", short(created.ID), "error", err)
		}
	}()
	var out bytes.Buffer
	code, err := e.runToEnd(ctx, created.ID, io.MultiWriter(log, &limitedBuffer{b: &out, max: 1 << 20}))
	if err != nil {
		return fmt.Errorf("component %s: install its packages in %s: %w", req.Component, req.Image, err)
	}
	if code != 0 {
		return pyfunc.InstallError(req.Component, req.Packages, pyfunc.IndexesOf(req.Installs), out.Bytes(), fmt.Errorf("exit code %d", code))
	}
	// The committed image keeps the base image's configuration; the
	// daemon merges what is unset from the container's, so set all.
	commitCfg := &container.Config{
		Env:        append([]string{}, base.Config.Env...),
		Entrypoint: base.Config.Entrypoint,
		Cmd:        base.Config.Cmd,
		User:       base.Config.User,
		WorkingDir: base.Config.WorkingDir,
		Labels:     map[string]string{},
	}
	if commitCfg.Entrypoint == nil {
		commitCfg.Entrypoint = []string{} // nil would take the container's: the install script
	}
	if commitCfg.Cmd == nil {
		commitCfg.Cmd = []string{}
	}
	if commitCfg.WorkingDir == "" {
		commitCfg.WorkingDir = "/"
	}
	for k, v := range base.Config.Labels {
		commitCfg.Labels[k] = v
	}
	for k, v := range labels {
		commitCfg.Labels[k] = v
	}
	if _, err := e.cli.ContainerCommit(bg, created.ID, container.CommitOptions{
		Reference: tag,
		Comment:   "mlpipe: packages of a KFP Python function component",
		Config:    commitCfg,
	}); err != nil {
		return fmt.Errorf("component %s: commit the image with its packages as %s: %w", req.Component, tag, err)
	}
	fmt.Fprintf(log, "derived %s\n", tag)
	return nil
}

// pipMounts writes the pip settings into dir and returns the mounts of
// the deriving container: settings, config file, cache, wheel directories.
func (e *Executor) pipMounts(dir string) ([]mount.Mount, error) {
	var envFile strings.Builder
	for _, kv := range e.opts.Pip.Environ(pipConfTarget) {
		k, v, _ := strings.Cut(kv, "=")
		envFile.WriteString("export " + k + "=" + shellQuote(v) + "\n")
	}
	envPath := filepath.Join(dir, "pip.env")
	if err := os.WriteFile(envPath, []byte(envFile.String()), 0o644); err != nil {
		return nil, err
	}
	ms := []mount.Mount{{Type: mount.TypeBind, Source: envPath, Target: pipEnvTarget, ReadOnly: true}}
	if c := e.opts.Pip.ConfigFile; c != "" {
		abs, err := filepath.Abs(c)
		if err != nil {
			return nil, err
		}
		ms = append(ms, mount.Mount{Type: mount.TypeBind, Source: abs, Target: pipConfTarget, ReadOnly: true})
	}
	if e.opts.PipCacheDir != "" {
		if err := os.MkdirAll(e.opts.PipCacheDir, 0o755); err != nil {
			return nil, fmt.Errorf("pip cache: %w", err)
		}
		ms = append(ms, mount.Mount{Type: mount.TypeBind, Source: e.opts.PipCacheDir, Target: pipCacheTarget})
	}
	for _, d := range e.opts.Pip.FindLinksDirs() {
		ms = append(ms, mount.Mount{Type: mount.TypeBind, Source: d, Target: d, ReadOnly: true})
	}
	return ms, nil
}

// deriveScript is the shell script of the deriving container: the SDK's
// own way to get pip, then each install; the cache is given back to the
// user that runs mlpipe.
func deriveScript(installs [][]string, uid, gid int) string {
	var b strings.Builder
	b.WriteString("set -e\n. " + pipEnvTarget + "\nexport PIP_ROOT_USER_ACTION=ignore\n")
	b.WriteString("if [ -d " + pipCacheTarget + " ]; then export PIP_CACHE_DIR=" + pipCacheTarget + "; fi\n")
	b.WriteString("if ! [ -x \"$(command -v pip)\" ] && ! python3 -m pip --version >/dev/null 2>&1; then\n" +
		"    python3 -m ensurepip || python3 -m ensurepip --user || apt-get install -y python3-pip\nfi\n")
	b.WriteString("status=0\n")
	for _, args := range installs {
		in := pyfunc.Install{Options: nil, Requirements: args}
		b.WriteString("if [ $status = 0 ]; then " + in.ShellCommand("python3") + " || status=$?; fi\n")
	}
	fmt.Fprintf(&b, "if [ -d %s ]; then chown -R %d:%d %s 2>/dev/null || true; fi\n", pipCacheTarget, uid, gid, pipCacheTarget)
	b.WriteString("exit $status\n")
	return b.String()
}

// runToEnd starts a created container, copies its output to w and returns
// its exit code. Cancelling ctx stops it.
func (e *Executor) runToEnd(ctx context.Context, id string, w io.Writer) (int, error) {
	bg := context.WithoutCancel(ctx)
	att, err := e.cli.ContainerAttach(bg, id, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return 0, err
	}
	defer att.Close()
	copied := make(chan error, 1)
	go func() {
		_, err := stdcopy.StdCopy(w, w, att.Reader)
		copied <- err
	}()
	waitC, errC := e.cli.ContainerWait(bg, id, container.WaitConditionNextExit)
	if err := e.cli.ContainerStart(bg, id, container.StartOptions{}); err != nil {
		return 0, err
	}
	status, err := e.wait(ctx, id, waitC, errC)
	if err != nil {
		return 0, err
	}
	<-copied
	return int(status.StatusCode), nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// PythonPrepared reports whether the image derived for req exists, and
// its tag (for mlpipe plan). A base image that is not local yet makes
// the answer "no", with the base image's name.
func (e *Executor) PythonPrepared(ctx context.Context, req contract.PythonRequest) (string, bool, error) {
	baseID, err := e.ImageID(ctx, req.Image)
	if err != nil || baseID == "" {
		return "an image derived from " + req.Image, false, err
	}
	return e.PythonTag(ctx, baseID, req)
}

// needsHostNetwork reports whether a pip setting or option names a server
// on this machine (localhost, 127.0.0.0/8, ::1): pip in the deriving
// container then needs the host's network to reach it.
func needsHostNetwork(s pyfunc.Settings, installs [][]string) bool {
	var urls []string
	for _, k := range []string{"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_TRUSTED_HOST"} {
		urls = append(urls, strings.Fields(strings.ReplaceAll(s.Env[k], ",", " "))...)
	}
	for _, args := range installs {
		for _, a := range args {
			if _, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(a, "--") {
				urls = append(urls, v)
			}
		}
	}
	if s.ConfigFile != "" {
		if b, err := os.ReadFile(s.ConfigFile); err == nil {
			urls = append(urls, strings.Fields(strings.NewReplacer("=", " ", ",", " ").Replace(string(b)))...)
		}
	}
	for _, u := range urls {
		host := u
		if p, err := url.Parse(u); err == nil && p.Host != "" {
			host = p.Hostname()
		} else if h, _, err := net.SplitHostPort(u); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if host == "localhost" || strings.HasSuffix(host, ".localhost") {
			return true
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return true
		}
	}
	return false
}
