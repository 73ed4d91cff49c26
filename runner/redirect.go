package runner

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// collectArtifact finishes one declared output artifact of a successful
// attempt: it merges what the executor output file says of it (o, may be
// nil; §3.3: metadata merged, a non-empty uri or customPath replaces) and
// stores the content under the artifact's URI.
//
// A component may point an output at another URI (how the model registry
// publishes a version, and what an artifact made with dsl.get_uri(suffix)
// is). mlpipe then stores the content the step wrote at the declared path
// under that URI; when the step wrote nothing there, the content is at the
// new URI's own path, which the KFP launcher reads: for a URI inside the
// task's root (dsl.get_uri) with every executor and store (its output
// root, outRoot), elsewhere only for a step on this host with the local
// store. The rules (docs/pipeline-format.md): the new URI lies
// inside the pipeline root, in a clean form, not at or under one of the
// task's declared outputs, with no symbolic link on its path below the
// root; outside the task's own directory it names nothing that exists
// already (the same content there counts as stored); a redirected output
// has content. URIs this attempt stored outside its directory are added
// to created (see unpublish).
func (c *containerTask) collectArtifact(ctx context.Context, ei *ExecutorInput, name string, o *outputArtifact, created *[]string) (*RuntimeArtifact, error) {
	st := c.r.opts.Store
	decl := ei.Outputs.Artifacts[name].Artifacts[0]
	a := *decl
	redirected := false
	if o != nil {
		if o.URI != "" {
			uri, err := c.redirectTarget(ei, c.fromStepOutRoot(o.URI))
			if err != nil {
				return nil, err
			}
			redirected = uri != cleanURI(decl.URI)
			if redirected {
				a.URI = uri
			}
		}
		for k, v := range o.Metadata {
			a.Metadata[k] = v
		}
		if cp := cmp.Or(o.CustomPath, o.CustomPathSC); cp != "" {
			local, err := c.customPath(decl, cp)
			if err != nil {
				return nil, err
			}
			a.local = local
		}
	}
	a.CustomPath = ""
	fromURI := false // content taken from the URI's path in the task's root
	if redirected && a.local == decl.local {
		if rel, ok := relURI(c.taskRoot(), a.URI); ok {
			// dsl.get_uri(suffix): the step wrote in its output root,
			// which every executor and store gives it (a container has it
			// mounted), at the URI's local path, where the KFP launcher
			// reads the content. Without anything there, the declared
			// path holds it, as for any redirect.
			if err := c.noLinksToOutRoot(); err != nil {
				return nil, err
			}
			at := filepath.Join(c.outRoot(), filepath.FromSlash(rel))
			if err := noLinksBelow(c.outRoot(), at); err != nil {
				return nil, err
			}
			if _, err := os.Lstat(at); !errors.Is(err, fs.ErrNotExist) {
				a.local, fromURI = at, true
			}
		} else if !st.Remote() && !c.r.opts.Executor.Properties().Isolated {
			// Elsewhere only a step of this host with the local store can
			// have written at the URI's own path.
			if _, err := os.Lstat(a.local); errors.Is(err, fs.ErrNotExist) {
				a.local = localPathOf(a.URI) // written in place, as for the KFP launcher
			}
		}
	}
	if a.local == decl.local && strings.HasPrefix(decl.local, c.dir+string(filepath.Separator)) {
		// Staged in the task directory, which a container may change.
		if err := noLinksBelow(c.dir, decl.local); err != nil {
			return nil, err
		}
	}
	fi, err := os.Lstat(a.local)
	switch {
	case errors.Is(err, fs.ErrNotExist) && redirected:
		if _, ok := relURI(c.taskRoot(), a.URI); ok {
			return nil, fmt.Errorf("the executor output points it at %s, but the step wrote nothing there nor at its declared path %s", a.URI, c.stepPath(decl))
		}
		return nil, fmt.Errorf("the executor output points it at %s, but the step wrote nothing at its path %s", a.URI, c.stepPath(decl))
	case errors.Is(err, fs.ErrNotExist):
		return &a, nil // declared, not written: registered without content, as the backend does
	case err != nil:
		return nil, err
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, fmt.Errorf("%s is a symbolic link; artifacts are files or directories", a.local)
	}
	if !st.Remote() {
		// A step of the process executor writes its outputs in the store
		// itself: it may have replaced a directory on the way with a link
		// (its output's parent, say) to make mlpipe record what lies
		// elsewhere. Nothing is stored or digested through a link.
		if err := noLinksBelow(localPathOf(st.Root()), localPathOf(a.URI)); err != nil {
			return nil, err
		}
	}
	inPlace := !st.Remote() && filepath.Clean(a.local) == filepath.Clean(localPathOf(a.URI))
	createOnly := redirected && !inPlace && !withinURI(c.taskRoot(), a.URI)
	var info ArtifactInfo
	stored := false
	if createOnly {
		// One task at a time checks and stores, so that two tasks of this
		// run (a loop of publishers) never both find a URI free.
		c.r.published.mu.Lock()
		defer c.r.published.mu.Unlock()
		if info, stored, err = c.storedAlready(ctx, a.URI, a.local); err != nil {
			return nil, err
		}
		c.r.published.claim(a.URI, c.path)
	}
	if !stored {
		put := st.Put
		if createOnly {
			put = st.Create // never replacing, as atomic as the store can
		}
		if info, err = put(ctx, a.URI, a.local); err != nil {
			if createOnly {
				c.r.published.unclaim(a.URI, c.path)
			}
			if errors.Is(err, ErrArtifactExists) {
				return nil, fmt.Errorf("%s was stored by someone else meanwhile; mlpipe does not replace it", a.URI)
			}
			return nil, fmt.Errorf("store it: %w", err)
		}
		if createOnly {
			*created = append(*created, a.URI)
		}
	}
	a.Digest, a.Size, a.Dir = info.Digest, info.Size, info.Dir
	if redirected && !st.Remote() && (a.local == decl.local && !inPlace || fromURI) {
		// Stored elsewhere: the copy at the declared URI would be an
		// artifact no record points at. Best effort: a step running as
		// another user may have left files mlpipe cannot remove.
		if err := os.RemoveAll(decl.local); err != nil {
			c.r.log.Warn("remove the declared copy of a redirected artifact", "task", c.path, "artifact", name, "err", err.Error())
		}
	}
	return &a, nil
}

// stepPath is where the step was told to write an output: the declared
// artifact's path as the step saw it.
func (c *containerTask) stepPath(decl *RuntimeArtifact) string {
	if c.r.opts.Executor.Properties().Isolated && isRemoteURI(decl.URI) {
		return KFPLocalPath(decl.URI)
	}
	return decl.local
}

// taskRoot is the URI of this task's own directory of the run.
func (c *containerTask) taskRoot() string {
	return strings.TrimSuffix(c.r.runRoot, "/") + "/" + c.relDir
}

// fromStepOutRoot maps a path under the step's output root (what
// dsl.get_uri returns where the root is not a /gcs/, /minio/ or /s3/ path:
// the staging directory of a step of this host with a remote store) to the
// URI it stands for under the task root. Anything else is returned as is.
func (c *containerTask) fromStepOutRoot(uri string) string {
	if !c.r.opts.Store.Remote() || c.r.opts.Executor.Properties().Isolated {
		return uri // the output root is the task root's local or KFP path
	}
	clean, ok := splitClean(uri)
	if !ok || strings.Contains(clean, "://") {
		return uri
	}
	rel, err := filepath.Rel(c.outRoot(), clean)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return uri
	}
	return strings.TrimSuffix(c.taskRoot(), "/") + "/" + filepath.ToSlash(rel)
}

// relURI returns uri relative to prefix when it lies strictly under it.
func relURI(prefix, uri string) (string, bool) {
	if !withinURI(prefix, uri) {
		return "", false
	}
	p, _ := splitClean(prefix)
	u, _ := splitClean(uri)
	return strings.TrimPrefix(u, strings.TrimSuffix(p, "/")+"/"), true
}

// customPath checks the customPath a component gave an output (§3.3: where
// the content is). A step on this host may name any path, as it could
// read it anyway; a container's paths are not the host's, and only its
// declared output path (or what lies under it) means the same on both
// sides.
func (c *containerTask) customPath(decl *RuntimeArtifact, cp string) (string, error) {
	if !c.r.opts.Executor.Properties().Isolated {
		return cp, nil
	}
	step := c.stepPath(decl)
	if cp = filepath.Clean(cp); cp == filepath.Clean(step) {
		return decl.local, nil
	}
	return "", fmt.Errorf("customPath %s: with the Docker executor an output's content must be at its declared path %s", cp, step)
}

// reservedName reports whether the last segment of uri is a name the
// stores keep for themselves (manifests, copies being written).
func reservedName(uri string) bool {
	base := path.Base(uri)
	return strings.HasPrefix(base, ".mlpipe-manifest.") || strings.HasSuffix(base, ".mlpipe-tmp")
}

// redirectTarget checks a URI a component gave an output artifact and
// returns it in canonical form (no file://, no trailing slash).
func (c *containerTask) redirectTarget(ei *ExecutorInput, uri string) (string, error) {
	root := c.r.opts.Store.Root()
	clean, ok := splitClean(uri)
	switch {
	case !ok:
		return "", fmt.Errorf("the executor output points it at %q, which is not a clean absolute path or URI (no \".\", \"..\" or empty segments)", uri)
	case !withinURI(root, clean):
		return "", fmt.Errorf("the executor output points it at %s, outside the pipeline root %s; mlpipe stores artifacts only under the pipeline root", uri, root)
	case reservedName(clean):
		return "", fmt.Errorf("the executor output points it at %s, a name mlpipe's stores reserve", uri)
	case clean == strings.TrimSuffix(c.taskRoot(), "/")+"/"+executorOutputName || withinURI(strings.TrimSuffix(c.taskRoot(), "/")+"/"+executorOutputName, clean):
		return "", fmt.Errorf("the executor output points it at %s, the executor output file itself", uri)
	}
	for _, l := range ei.Outputs.Artifacts {
		for _, d := range l.Artifacts {
			if dc := cleanURI(d.URI); dc != clean && (withinURI(clean, dc) || withinURI(dc, clean)) {
				return "", fmt.Errorf("the executor output points it at %s, which overlaps the task's output %s", uri, dc)
			}
		}
	}
	return clean, nil
}

// storedAlready checks that nothing is stored at or under uri, where mlpipe
// must not replace anything. The same content already there counts as
// stored (another task of this run published it, or an attempt of this
// task did before mlpipe was killed and the run was resumed); anything else
// is an error. Called with published.mu held.
func (c *containerTask) storedAlready(ctx context.Context, uri, local string) (ArtifactInfo, bool, error) {
	st := c.r.opts.Store
	occupied, err := st.Exists(ctx, uri)
	if err != nil {
		return ArtifactInfo{}, false, fmt.Errorf("check that %s is free: %w", uri, err)
	}
	if !occupied {
		return ArtifactInfo{}, false, nil
	}
	exists := fmt.Errorf("%s already exists; mlpipe does not replace anything outside the task's own directory (publish under a new URI, or remove the old one first)", uri)
	have, err := st.Stat(ctx, uri)
	switch {
	case errors.Is(err, ErrArtifactNotFound):
		return ArtifactInfo{}, false, exists // a prefix of other artifacts
	case err != nil:
		return ArtifactInfo{}, false, fmt.Errorf("check what is stored at %s: %w", uri, err)
	}
	mine, err := st.Digest(ctx, local)
	if err != nil {
		return ArtifactInfo{}, false, err
	}
	if have.Digest == "" { // the local store reports no digest without reading
		_, err := st.Get(ctx, uri, "", mine.Digest)
		switch {
		case errors.Is(err, ErrDigestMismatch):
			return ArtifactInfo{}, false, exists
		case err != nil:
			return ArtifactInfo{}, false, fmt.Errorf("check what is stored at %s: %w", uri, err)
		}
		have.Digest = mine.Digest
	}
	if have.Digest != mine.Digest || have.Dir != mine.Dir {
		return ArtifactInfo{}, false, exists
	}
	return mine, true, nil
}

// publications are the URIs tasks of the run published outside their own
// directories, with the tasks that use each. mu is held while a task checks
// and stores such a URI, so that two tasks of this run (a loop of
// publishers) never both find it free.
type publications struct {
	mu     sync.Mutex
	claims map[string]map[string]bool
}

// claim records, under mu, that task uses what is published at uri.
func (p *publications) claim(uri, task string) {
	if p.claims == nil {
		p.claims = map[string]map[string]bool{}
	}
	if p.claims[uri] == nil {
		p.claims[uri] = map[string]bool{}
	}
	p.claims[uri][task] = true
}

// unclaim drops task's claim on uri and reports whether another task of
// the run still uses it. Called with mu held.
func (p *publications) unclaim(uri, task string) (usedElsewhere bool) {
	delete(p.claims[uri], task)
	return len(p.claims[uri]) > 0
}

// unpublish removes, best effort, what a failed attempt stored outside its
// directory, so that no version published by a failed task looks
// complete, unless another task of the run uses the same content.
func (c *containerTask) unpublish(uris []string) {
	if len(uris) == 0 {
		return
	}
	c.r.published.mu.Lock()
	defer c.r.published.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, u := range uris {
		if c.r.published.unclaim(u, c.path) {
			continue
		}
		if err := c.r.opts.Store.Delete(ctx, u); err != nil {
			c.r.log.Warn("remove an artifact a failed task published", "task", c.path, "uri", u, "err", err.Error())
		}
	}
}

// noLinksBelow fails when a component of p below root (p itself included)
// is a symbolic link: storing through one could write outside the store,
// wherever a step's link points.
func noLinksBelow(root, p string) error {
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("%s is not inside the store %s", p, root)
	}
	cur := root
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symbolic link; mlpipe does not store artifacts through links", cur)
		}
	}
	return nil
}

// cleanURI is uri without file://, "." segments or a trailing slash.
func cleanURI(u string) string {
	c, _ := splitClean(u)
	return c
}

// splitClean cleans u (see cleanURI) and reports whether u was already
// clean apart from file:// and a trailing slash, and absolute when it is
// a path.
func splitClean(u string) (string, bool) {
	u = strings.TrimPrefix(u, "file://")
	if scheme, rest, ok := strings.Cut(u, "://"); ok {
		c := strings.TrimPrefix(path.Clean("/"+rest), "/")
		return scheme + "://" + c, c == strings.TrimSuffix(rest, "/")
	}
	c := filepath.Clean(u)
	return c, filepath.IsAbs(u) && c == strings.TrimSuffix(u, "/")
}

// withinURI reports whether uri lies strictly under prefix (both local
// paths or both scheme://bucket/key URIs) and is written without "." or
// ".." segments.
func withinURI(prefix, uri string) bool {
	p, _ := splitClean(prefix)
	u, ok := splitClean(uri)
	return ok && strings.HasPrefix(u, strings.TrimSuffix(p, "/")+"/")
}
