package runner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// collectArtifact finishes one declared output artifact of a successful
// attempt: it merges what the executor output file says of it (o, may be
// nil; §3.3: metadata merged, a non-empty uri or customPath replaces) and
// stores the content under the artifact's URI.
//
// A component may point an output at another URI (how the model registry
// publishes a version). mlpipe then stores the content the step wrote at
// the declared path under that URI; a step on this host with the local
// store may instead have written at the new URI's own path, which the KFP
// launcher reads. The new URI must lie inside the pipeline root, reach no
// file through a symbolic link, and, outside the task's own directory,
// name nothing that exists already: mlpipe never replaces what another
// task, run or version stored (the same content there counts as stored).
// URIs this attempt stored outside its directory are added to created.
func (c *containerTask) collectArtifact(ctx context.Context, ei *ExecutorInput, name string, o *outputArtifact, created *[]string) (*RuntimeArtifact, error) {
	st := c.r.opts.Store
	decl := ei.Outputs.Artifacts[name].Artifacts[0]
	a := *decl
	redirected := false
	if o != nil {
		if o.URI != "" {
			uri, err := c.redirectTarget(o.URI)
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
		if cp := firstNonEmpty(o.CustomPath, o.CustomPathSC); cp != "" {
			a.local = cp
		}
	}
	a.CustomPath = ""
	onHost := !st.Remote() && c.r.opts.Executor.Name() != "docker"
	if _, err := os.Lstat(a.local); err != nil && redirected && a.local == decl.local && onHost {
		a.local = localPathOf(a.URI) // written in place, as for the KFP launcher
	}
	fi, err := os.Lstat(a.local)
	switch {
	case err != nil && redirected:
		return nil, fmt.Errorf("the executor output points it at %s, but the step wrote nothing at %s", a.URI, a.local)
	case err != nil:
		return &a, nil // declared, not written: registered without content, as the backend does
	case fi.Mode()&fs.ModeSymlink != 0:
		return nil, fmt.Errorf("%s is a symbolic link; artifacts are files or directories", a.local)
	}
	inPlace := !st.Remote() && filepath.Clean(a.local) == filepath.Clean(localPathOf(a.URI))
	createOnly := redirected && !inPlace && !c.ownsURI(ei, a.URI)
	if redirected && !inPlace && !st.Remote() {
		if err := noLinksBelow(st.Root(), localPathOf(a.URI)); err != nil {
			return nil, err
		}
	}
	var info ArtifactInfo
	stored := false
	if createOnly {
		// One task at a time checks and stores, so that two tasks of this
		// run (a loop of publishers) never both find a URI free.
		c.r.publishMu.Lock()
		defer c.r.publishMu.Unlock()
		if info, stored, err = c.storedAlready(ctx, a.URI, a.local); err != nil {
			return nil, err
		}
	}
	if !stored {
		if info, err = st.Put(ctx, a.URI, a.local); err != nil {
			return nil, fmt.Errorf("store it: %w", err)
		}
		if createOnly {
			*created = append(*created, a.URI)
		}
	}
	a.Digest, a.Size, a.Dir = info.Digest, info.Size, info.Dir
	if redirected && !inPlace && a.local == decl.local && !st.Remote() {
		// Stored elsewhere: the copy at the declared URI would be an
		// artifact no record points at. Best effort: a step running as
		// another user may have left files mlpipe cannot remove.
		if err := os.RemoveAll(decl.local); err != nil {
			c.r.log.Warn("remove the declared copy of a redirected artifact", "task", c.path, "artifact", name, "err", err.Error())
		}
	}
	return &a, nil
}

// redirectTarget checks a URI a component gave an output artifact and
// returns it in canonical form (no file://, no trailing slash).
func (c *containerTask) redirectTarget(uri string) (string, error) {
	root := c.r.opts.Store.Root()
	clean := cleanURI(uri)
	if !withinURI(root, uri) {
		return "", fmt.Errorf("the executor output points it at %s, outside the pipeline root %s; mlpipe stores artifacts only under the pipeline root", uri, root)
	}
	return clean, nil
}

// ownsURI reports whether uri lies inside this task's own directory of the
// run without covering one of its declared outputs: there the task may
// replace what is stored, as a re-run of it does.
func (c *containerTask) ownsURI(ei *ExecutorInput, uri string) bool {
	taskRoot := strings.TrimSuffix(c.r.runRoot, "/") + "/" + dirName(c.path)
	if !withinURI(taskRoot, uri) {
		return false
	}
	for _, l := range ei.Outputs.Artifacts {
		for _, d := range l.Artifacts {
			if cleanURI(d.URI) == uri || withinURI(uri, d.URI) {
				return false
			}
		}
	}
	return true
}

// storedAlready checks that nothing is stored at or under uri, where mlpipe
// must not replace anything. The same content already there counts as
// stored (an attempt of this task stored it before mlpipe was killed and
// the run was resumed); anything else is an error.
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
	if err != nil {
		return ArtifactInfo{}, false, exists // something else lives there (a prefix of other artifacts)
	}
	mine, err := st.Digest(ctx, local)
	if err != nil {
		return ArtifactInfo{}, false, err
	}
	if have.Digest == "" { // the local store reports no digest without reading
		if _, err := st.Get(ctx, uri, "", mine.Digest); err != nil {
			return ArtifactInfo{}, false, exists
		}
		have.Digest = mine.Digest
	}
	if have.Digest != mine.Digest || have.Dir != mine.Dir {
		return ArtifactInfo{}, false, exists
	}
	return mine, true, nil
}

// unpublish removes, best effort, what a failed attempt stored outside
// its directory, so that no published version of a failed task looks
// complete.
func (c *containerTask) unpublish(uris []string) {
	if len(uris) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, u := range uris {
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
