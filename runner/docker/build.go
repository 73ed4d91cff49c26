package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/build"
)

// BuildRequest asks for the image of one component directory.
type BuildRequest struct {
	Dir   string // the build context: a directory with a Dockerfile
	Image string // the name to tag it with, as the component names it
	// Args are the build arguments (a nil value keeps the Dockerfile's
	// default).
	Args map[string]*string
	// Force builds even when an image of the same content hash exists.
	Force bool
}

// BuildResult is what a build produced.
type BuildResult struct {
	ID      string // image ID (sha256:...)
	HashTag string // repo:mlpipe-<hash>, the content-hash tag
	Built   bool   // false when an image of the same content already existed
}

// hashTagPrefix starts the content-hash tag of built images.
const hashTagPrefix = "mlpipe-"

// Build builds the image of a component directory through the Engine API
// and tags it with req.Image and with a content-hash tag. When an image
// with that content-hash tag exists, nothing is built: the name is pointed
// at it. The hash covers the files of the context (after .dockerignore),
// the build arguments and the IDs of the local base images the Dockerfile
// names. Build output goes to log.
func (e *Executor) Build(ctx context.Context, req BuildRequest, log io.Writer) (BuildResult, error) {
	log = discard(log)
	named, err := reference.ParseNormalizedNamed(req.Image)
	if err != nil {
		return BuildResult{}, fmt.Errorf("build %s: image name %q: %w", req.Dir, req.Image, err)
	}
	if _, ok := named.(reference.Digested); ok {
		return BuildResult{}, fmt.Errorf("build %s: image %s is referenced by digest; a component that is built needs a tag", req.Dir, req.Image)
	}
	files, err := contextFiles(req.Dir)
	if err != nil {
		return BuildResult{}, fmt.Errorf("build %s: %w", req.Image, err)
	}
	dockerfile, err := os.ReadFile(filepath.Join(req.Dir, "Dockerfile"))
	if err != nil {
		return BuildResult{}, fmt.Errorf("build %s: %w", req.Image, err)
	}
	var bases []string
	for _, b := range baseImages(dockerfile, req.Args) {
		id, err := e.ImageID(ctx, b)
		if err != nil {
			return BuildResult{}, fmt.Errorf("build %s: base image: %w", req.Image, err)
		}
		bases = append(bases, b+"="+id)
	}
	hash, err := contextHash(req.Dir, files, req.Args, bases)
	if err != nil {
		return BuildResult{}, fmt.Errorf("build %s: hash the context %s: %w", req.Image, req.Dir, err)
	}
	res := BuildResult{HashTag: reference.FamiliarName(named) + ":" + hashTagPrefix + hash[:16]}
	if !req.Force {
		id, err := e.ImageID(ctx, res.HashTag)
		if err != nil {
			return BuildResult{}, err
		}
		if id != "" {
			if err := e.pointTag(ctx, req.Image, id); err != nil {
				return BuildResult{}, err
			}
			fmt.Fprintf(log, "%s is up to date (%s, %s)\n", req.Image, res.HashTag, short(id))
			res.ID = id
			return res, nil
		}
	}

	labels := map[string]string{LabelContextHash: hash}
	if len(req.Args) > 0 {
		b, err := json.Marshal(req.Args)
		if err != nil {
			return BuildResult{}, err
		}
		labels[LabelBuildArgs] = string(b)
	}
	kit := e.useBuildKit()
	fmt.Fprintf(log, "building %s from %s%s%s\n", req.Image, req.Dir, showArgs(req.Args), map[bool]string{true: " (BuildKit)", false: ""}[kit])
	// The context streams while the daemon reads it (BuildKit reads it
	// during the build): its pipe is closed when the build is over.
	var pr *io.PipeReader
	defer func() { pr.Close() }()
	start := func(kit bool) (build.ImageBuildResponse, error) {
		if pr != nil {
			pr.Close()
		}
		var pw *io.PipeWriter
		pr, pw = io.Pipe()
		go func() { pw.CloseWithError(writeContext(pw, req.Dir, files)) }()
		version := build.BuilderV1
		if kit {
			version = build.BuilderBuildKit
		}
		resp, err := e.cli.ImageBuild(ctx, pr, build.ImageBuildOptions{
			Tags:        []string{req.Image, res.HashTag},
			Dockerfile:  "Dockerfile",
			BuildArgs:   req.Args,
			Labels:      labels,
			Remove:      true,
			ForceRemove: true,
			Version:     version,
		})
		return resp, err
	}
	resp, err := start(kit)
	if err != nil && kit && ctx.Err() == nil && e.opts.Builder == "" && strings.Contains(strings.ToLower(err.Error()), "buildkit") {
		// A daemon without BuildKit refuses the version ("buildkit not
		// supported by daemon"): the legacy builder, from now on. Other
		// errors are errors.
		e.noBuildKit.Store(true)
		e.log.InfoContext(ctx, "the daemon does not build with BuildKit: using the legacy builder", "error", err)
		resp, err = start(false)
	}
	if err != nil {
		return BuildResult{}, fmt.Errorf("build image %s from %s: %w", req.Image, req.Dir, ctxErr(ctx, err))
	}
	defer resp.Body.Close()
	if _, err := readStream(resp.Body, log); err != nil {
		return BuildResult{}, fmt.Errorf("build image %s from %s: %w", req.Image, req.Dir, ctxErr(ctx, err))
	}
	id, err := e.ImageID(ctx, res.HashTag)
	if err != nil {
		return BuildResult{}, err
	}
	if id == "" {
		return BuildResult{}, fmt.Errorf("build image %s from %s: the daemon reported success but %s does not exist", req.Image, req.Dir, res.HashTag)
	}
	res.ID, res.Built = id, true
	fmt.Fprintf(log, "built %s (%s, %s)\n", req.Image, res.HashTag, short(id))
	return res, nil
}

// pointTag makes img name the image id, unless it already does.
func (e *Executor) pointTag(ctx context.Context, img, id string) error {
	cur, err := e.ImageID(ctx, img)
	if err != nil {
		return err
	}
	if cur == id {
		return nil
	}
	if err := e.cli.ImageTag(ctx, id, img); err != nil {
		return fmt.Errorf("tag image %s as %s: %w", short(id), img, ctxErr(ctx, err))
	}
	return nil
}

// baseImages returns the images the FROM lines of a Dockerfile name, with
// ARG values (build args, else the defaults of ARG lines before the first
// FROM) substituted; stage names, scratch and references that remain
// unresolved are left out.
func baseImages(dockerfile []byte, args map[string]*string) []string {
	vars := map[string]string{}
	stages := map[string]bool{}
	seenFrom := false
	var out []string
	for _, line := range logicalLines(string(dockerfile)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "ARG":
			if seenFrom || len(fields) < 2 {
				continue
			}
			k, v, hasDefault := strings.Cut(fields[1], "=")
			if a, ok := args[k]; ok && a != nil {
				vars[k] = *a
			} else if hasDefault {
				vars[k] = strings.Trim(v, `"'`)
			}
		case "FROM":
			seenFrom = true
			rest := fields[1:]
			for len(rest) > 0 && strings.HasPrefix(rest[0], "--") {
				rest = rest[1:]
			}
			if len(rest) == 0 {
				continue
			}
			missing := false
			ref := os.Expand(rest[0], func(k string) string {
				k, def, _ := strings.Cut(k, ":-")
				if v, ok := vars[k]; ok && v != "" {
					return v
				}
				if def == "" {
					missing = true
				}
				return def
			})
			_, refErr := reference.ParseNormalizedNamed(ref)
			skip := missing || refErr != nil || strings.EqualFold(ref, "scratch") || stages[strings.ToLower(ref)]
			if len(rest) >= 3 && strings.EqualFold(rest[1], "AS") {
				stages[strings.ToLower(rest[2])] = true
			}
			if !skip {
				out = append(out, ref)
			}
		}
	}
	return out
}

// logicalLines joins continuation lines and drops comments.
func logicalLines(s string) []string {
	var out []string
	var cur strings.Builder
	for _, l := range strings.Split(s, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "#") {
			continue
		}
		if strings.HasSuffix(t, `\`) {
			cur.WriteString(strings.TrimSuffix(t, `\`))
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(t)
		out = append(out, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// showArgs formats build arguments for the log: " with K=V ...".
func showArgs(args map[string]*string) string {
	var kv []string
	for k, v := range args {
		if v != nil {
			kv = append(kv, k+"="+*v)
		}
	}
	if len(kv) == 0 {
		return ""
	}
	sort.Strings(kv)
	return " with " + strings.Join(kv, " ")
}

// useBuildKit reports whether builds use BuildKit: docker.builder says so
// ("buildkit", "legacy"), else BuildKit unless the daemon refused it once
// (Build then retries with the legacy builder, which Docker deprecates).
func (e *Executor) useBuildKit() bool {
	switch e.opts.Builder {
	case "legacy":
		return false
	case "buildkit":
		return true
	}
	return !e.noBuildKit.Load()
}
