package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mlpipe/mlpipe/internal/units"
	"github.com/mlpipe/mlpipe/storage"
)

func newArtifactsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "artifacts",
		Short: "List and download artifacts of the artifact store (local or MinIO/S3)",
		Long: `List and download what runs stored: the artifacts of runs
(<pipeline root>/<pipeline>/<run>/<task>/<output>) and what components
published elsewhere under the pipeline root, such as the versions of
pipelines/training's model registry (<pipeline root>/registry/<model>/<version>).
URIs are paths for the local store and minio://bucket/key or s3://bucket/key
for an object store (configured as for mlpipe run). A relative URI is taken
under the pipeline root: "registry/classifier" is
<pipeline root>/registry/classifier.`,
	}
	var lsOut string
	ls := &cobra.Command{
		Use:   "ls [PREFIX]",
		Short: "List the stored files under a URI prefix (default: the pipeline root)",
		Args:  args(0, 1),
		RunE: func(cmd *cobra.Command, argv []string) error {
			prefix := ""
			if len(argv) > 0 {
				prefix = argv[0]
			}
			return artifactsLs(cmd.Context(), a, prefix, lsOut)
		},
	}
	ls.Flags().StringVar(&lsOut, "output", "text", "text or json")
	var force bool
	get := &cobra.Command{
		Use:   "get URI DEST",
		Short: "Download an artifact (a file or a directory) to DEST",
		Long: `Download the artifact at URI (a file or a directory artifact) the way cp copies:
into DEST/<artifact name> when DEST is an existing directory ("get URI ." puts it in
the working directory), else to DEST itself (missing parent directories are created).
At the target, a file or an empty directory is replaced, a non-empty directory only
with --force, and a symbolic link never (nothing is written through one).

Even with --force, it refuses (exit 2, changing nothing) to write into / itself, the
state directory (run history and local artifacts) or a local pipeline root, and a
target that is or contains the working directory, $HOME, the state directory or the
artifact itself.

The download goes to a temporary name beside the target, is verified, and only then
takes the target's place: a failure leaves what was there. An artifact a run recorded
must match the digest in the run history: one changed since fails (exit 1) and
nothing is written. Objects in MinIO/S3 are otherwise checked against the sha256
stored with them; other local files are copied as they are.`,
		Args: args(2, 2),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return artifactsGet(cmd.Context(), a, argv[0], argv[1], force)
		},
	}
	get.Flags().BoolVar(&force, "force", false, "replace a non-empty directory at the target")
	for _, c := range []*cobra.Command{ls, get} {
		c.Flags().String("pipeline-root", "", "the pipeline root relative URIs are under (default: pipeline_root from the configuration, else the state directory's artifacts)")
	}
	cmd.AddCommand(ls, get)
	return cmd
}

// artifactStoreFor opens the store that holds uri: the object store of a
// minio:// or s3:// URI, else the local store (whose List and Get take any
// absolute path). An empty uri is the pipeline root, a relative one lies
// under it. It returns the store and the absolute URI.
func (a *app) artifactStoreFor(uri string) (storage.Store, string, error) {
	root := a.cfg.PipelineRoot
	if root == "" {
		root = a.layout().Artifacts()
	}
	switch {
	case uri == "":
		uri = root
	case !strings.Contains(uri, "://") && !filepath.IsAbs(uri):
		rel := path.Clean(filepath.ToSlash(uri))
		if rel == ".." || strings.HasPrefix(rel, "../") {
			return nil, "", usagef("%q: a relative URI must stay under the pipeline root %s", uri, root)
		}
		uri = strings.TrimSuffix(root, "/") + "/" + rel
	}
	var st storage.Store
	var err error
	switch {
	case strings.HasPrefix(uri, "minio://"), strings.HasPrefix(uri, "s3://"):
		st, err = a.openObjectStoreAs("artifact URI", uri, false)
	case strings.Contains(uri, "://") && !strings.HasPrefix(uri, "file://"):
		return nil, "", usagef("%q: supported schemes are file://, minio:// and s3://", uri)
	case strings.HasPrefix(uri, "file://") && !filepath.IsAbs(strings.TrimPrefix(uri, "file://")):
		return nil, "", usagef("%q: a file:// URI needs an absolute path", uri)
	default:
		uri, err = filepath.Abs(strings.TrimPrefix(uri, "file://"))
		if err == nil {
			st, err = storage.NewLocal(a.layout().Artifacts())
		}
	}
	if err != nil {
		return nil, "", err
	}
	return st, uri, nil
}

func artifactsLs(ctx context.Context, a *app, prefix, output string) error {
	if output != "text" && output != "json" {
		return usagef("--output must be text or json, not %q", output)
	}
	s, prefix, err := a.artifactStoreFor(prefix)
	if err != nil {
		return err
	}
	var objs []storage.Object
	if err := s.List(ctx, prefix, func(o storage.Object) error {
		objs = append(objs, o)
		return nil
	}); err != nil {
		return err
	}
	slices.SortFunc(objs, func(x, y storage.Object) int { return strings.Compare(x.URI, y.URI) })
	if output == "json" {
		out := make([]map[string]any, 0, len(objs))
		for _, o := range objs {
			out = append(out, map[string]any{"uri": o.URI, "size": o.Size})
		}
		return writeJSON(a, out)
	}
	if len(objs) == 0 {
		fmt.Fprintf(a.stderr, "nothing stored under %s\n", prefix)
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	var total int64
	for _, o := range objs {
		fmt.Fprintf(tw, "%s\t  %s\n", units.Bytes(o.Size), o.URI)
		total += o.Size
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "%d files, %s under %s\n", len(objs), units.Bytes(total), prefix)
	return nil
}

func artifactsGet(ctx context.Context, a *app, uri, dest string, force bool) error {
	s, uri, err := a.artifactStoreFor(uri)
	if err != nil {
		return err
	}
	if dest == "" {
		return usagef("DEST must not be empty")
	}
	g, err := newGetGuard(a)
	if err != nil {
		return err
	}
	localSrc := ""
	if !strings.Contains(uri, "://") {
		localSrc = uri // artifactStoreFor made local URIs absolute paths
	}
	target, err := g.target(artifactName(uri), localSrc, dest, force)
	if err != nil {
		return err
	}
	want, recordedBy, err := recordedDigest(ctx, a, uri)
	if err != nil {
		return err
	}
	parent := filepath.Dir(target)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	// Download next to the target (same file system: the rename below is
	// atomic), under a name of our own that nothing else uses.
	tmp := filepath.Join(parent, "."+filepath.Base(target)+"."+randomSuffix()+".mlpipe-get")
	defer os.RemoveAll(tmp)
	info, err := s.Get(ctx, uri, tmp, want)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return usagef("no artifact at %s (see: mlpipe artifacts ls)", uri)
	case errors.Is(err, storage.ErrDigestMismatch) && recordedBy != "":
		return fmt.Errorf("%s is not what run %s recorded: %w; nothing was written to %s", uri, recordedBy, err, target)
	case errors.Is(err, storage.ErrDigestMismatch):
		return fmt.Errorf("%w; nothing was written to %s", err, target)
	case err != nil:
		return err
	}
	if err := placeDownload(tmp, target, force); err != nil {
		return err
	}
	what := "file"
	if info.Dir {
		what = "directory"
	}
	fmt.Fprintf(a.stdout, "%s -> %s (%s, %s", uri, target, what, units.Bytes(info.Size))
	if info.Digest != "" {
		fmt.Fprintf(a.stdout, ", %s", info.Digest)
	}
	if recordedBy != "" {
		fmt.Fprintf(a.stdout, ", as run %s recorded it", recordedBy)
	}
	fmt.Fprintln(a.stdout, ")")
	return nil
}

// artifactName is the last element of an artifact URI: the name cp would
// give the copy inside a directory.
func artifactName(uri string) string {
	if _, rest, ok := strings.Cut(uri, "://"); ok {
		return path.Base("/" + strings.Trim(rest, "/"))
	}
	return filepath.Base(uri)
}

// getGuard holds the paths that mlpipe artifacts get never replaces or
// writes into, each as given and with its symbolic links resolved.
type getGuard struct {
	home, cwd []string
	// stores are the state directory and a local pipeline root: never
	// written into, replaced or removed with a directory that holds them.
	stores []guardedStore
}

type guardedStore struct {
	what  string
	paths []string
}

func newGetGuard(a *app) (*getGuard, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	home, _ := os.UserHomeDir()
	g := &getGuard{cwd: pathForms(cwd), home: pathForms(home)}
	g.stores = append(g.stores, guardedStore{"the state directory (run history and artifacts)", pathForms(a.cfg.StateDir)})
	if root := a.cfg.PipelineRoot; root != "" && (!strings.Contains(root, "://") || strings.HasPrefix(root, "file://")) {
		if root = strings.TrimPrefix(root, "file://"); filepath.IsAbs(root) {
			g.stores = append(g.stores, guardedStore{"the pipeline root (the local artifact store)", pathForms(root)})
		}
	}
	return g, nil
}

// target decides where the artifact called name goes for DEST, the way cp
// does, and refuses what must never be written: it returns the absolute
// path of the target (its parent's symbolic links resolved) or a usage
// error (exit 2). localSrc is the artifact's path for the local store.
func (g *getGuard) target(name, localSrc, dest string, force bool) (string, error) {
	if name == "" || name == "." || name == ".." || name == "/" {
		return "", usagef("cannot tell the name of the artifact to write to %s", dest)
	}
	abs, err := filepath.Abs(dest)
	if err != nil {
		return "", err
	}
	var target, lexical string
	st, err := os.Stat(abs)
	switch {
	case err == nil && st.IsDir():
		// An existing directory (or a link to one) receives the artifact.
		dir := resolveExisting(abs)
		if dir == "/" || abs == "/" {
			return "", refusef("refusing to write into / itself: give a directory below it")
		}
		target, lexical = filepath.Join(dir, name), filepath.Join(abs, name)
	case err == nil || errors.Is(err, fs.ErrNotExist):
		if strings.HasSuffix(dest, string(filepath.Separator)) {
			return "", usagef("%s is not an existing directory", dest)
		}
		target, lexical = filepath.Join(resolveExisting(filepath.Dir(abs)), filepath.Base(abs)), abs
	default:
		return "", err
	}
	for _, t := range []string{target, lexical} {
		if why := g.refusal(t, localSrc); why != "" {
			return "", refusef("refusing to write %s: %s (even with --force); nothing was changed", target, why)
		}
	}
	st, err = os.Lstat(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return target, nil
	case err != nil:
		return "", err
	case st.Mode()&fs.ModeSymlink != 0:
		return "", refusef("refusing to write %s: it is a symbolic link, which mlpipe does not write through; remove it or choose another DEST", target)
	case st.Mode().IsRegular():
		return target, nil // replaced, as cp overwrites a file
	case !st.IsDir():
		return "", refusef("refusing to write %s: it is not a regular file or a directory", target)
	}
	if !force {
		empty, err := isEmptyDir(target)
		if err != nil {
			return "", err
		}
		if !empty {
			return "", refusef("%s is a directory that is not empty: use --force to replace it (or choose another DEST); nothing was changed", target)
		}
	}
	return target, nil
}

// refusal says why the target t may never be written, or "".
func (g *getGuard) refusal(t, localSrc string) string {
	for _, s := range g.stores {
		for _, p := range s.paths {
			switch {
			case t == p:
				return "it is " + s.what
			case within(t, p):
				return "it is inside " + s.what
			case within(p, t):
				return "it contains " + s.what
			}
		}
	}
	for _, p := range g.cwd {
		if within(p, t) {
			return ifElse(t == p, "it is the working directory", "it contains the working directory")
		}
	}
	for _, p := range g.home {
		if within(p, t) {
			return ifElse(t == p, "it is your home directory ($HOME)", "it contains your home directory ($HOME)")
		}
	}
	if localSrc != "" {
		for _, p := range pathForms(localSrc) {
			switch {
			case t == p:
				return "it is the artifact itself"
			case within(p, t):
				return "it contains the artifact " + localSrc
			case within(t, p):
				return "it is inside the artifact " + localSrc
			}
		}
	}
	return ""
}

// refusedError is a target mlpipe artifacts get will not write: invalid
// input (exit 2), without the usage hint.
type refusedError struct{ msg string }

func (e refusedError) Error() string    { return "mlpipe: " + e.msg }
func (refusedError) InvalidInput() bool { return true }

func refusef(format string, args ...any) error {
	return refusedError{fmt.Sprintf(format, args...)}
}

func ifElse(c bool, yes, no string) string {
	if c {
		return yes
	}
	return no
}

// within reports whether the clean absolute path p is dir or lies below it.
func within(p, dir string) bool {
	if p == dir || dir == string(filepath.Separator) {
		return true
	}
	return strings.HasPrefix(p, dir+string(filepath.Separator))
}

// pathForms is p absolute and clean, and also with its symbolic links
// resolved when that differs; none for an empty p.
func pathForms(p string) []string {
	if p == "" {
		return nil
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil
	}
	out := []string{abs}
	if r := resolveExisting(abs); r != abs {
		out = append(out, r)
	}
	return out
}

// resolveExisting resolves the symbolic links of the longest existing
// prefix of the clean absolute path p and appends the rest.
func resolveExisting(p string) string {
	rest := ""
	for {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, rest)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return filepath.Join(p, rest)
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

func isEmptyDir(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return len(names) == 0, err
}

func randomSuffix() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// placeDownload puts the verified download at tmp in target's place. A
// file takes a file's place in one rename. Anything else there (a
// directory; a file where a directory goes) is first moved aside to a
// sibling name and only removed once the download is in place; if that
// fails, it is moved back. Without force, what is moved aside must be a
// file or an empty directory (as checked before the download), and is
// removed only if it still is.
func placeDownload(tmp, target string, force bool) error {
	newSt, err := os.Lstat(tmp)
	if err != nil {
		return err
	}
	old, err := os.Lstat(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Rename never replaces a non-empty directory that appeared since.
		return os.Rename(tmp, target)
	case err != nil:
		return err
	case old.Mode()&fs.ModeSymlink != 0:
		return refusef("refusing to write %s: it became a symbolic link; nothing was changed", target)
	case old.Mode().IsRegular() && newSt.Mode().IsRegular():
		return os.Rename(tmp, target)
	}
	if old.IsDir() && !force {
		if empty, err := isEmptyDir(target); err != nil || !empty {
			return refusef("%s is a directory that is not empty: use --force to replace it; nothing was changed", target)
		}
	}
	aside := filepath.Join(filepath.Dir(target), "."+filepath.Base(target)+"."+randomSuffix()+".mlpipe-old")
	if err := os.Rename(target, aside); err != nil {
		return fmt.Errorf("move %s aside to replace it: %w", target, err)
	}
	if err := os.Rename(tmp, target); err != nil {
		if rerr := os.Rename(aside, target); rerr != nil {
			return fmt.Errorf("put the download at %s: %w; what was there is now at %s (moving it back failed: %v)", target, err, aside, rerr)
		}
		return fmt.Errorf("put the download at %s: %w; what was there is unchanged", target, err)
	}
	remove := os.Remove // a file or an empty directory
	if force {
		remove = os.RemoveAll
	}
	if err := remove(aside); err != nil {
		return fmt.Errorf("%s is in place, but what it replaced is left at %s: %w", target, aside, err)
	}
	return nil
}

// recordedDigest returns the digest the run history recorded for the
// artifact at uri (an output of a run) and that run's id, or "" when the
// history has no record of it (a file inside a directory artifact, a
// prefix, an object no run produced) or there is no history.
func recordedDigest(ctx context.Context, a *app, uri string) (digest, run string, err error) {
	if _, err := os.Stat(a.layout().History()); errors.Is(err, fs.ErrNotExist) {
		return "", "", nil
	}
	h, err := a.openHistory()
	if err != nil {
		return "", "", fmt.Errorf("read the run history to verify %s: %w", uri, err)
	}
	defer h.Close()
	uris := []string{uri}
	if t := strings.TrimRight(uri, "/"); t != uri && t != "" {
		uris = append(uris, t)
	}
	for _, u := range uris {
		uses, err := h.Lineage(ctx, u)
		if err != nil {
			return "", "", fmt.Errorf("read the run history to verify %s: %w", uri, err)
		}
		for _, use := range uses {
			if use[2] != "output" {
				continue
			}
			arts, err := h.RunArtifacts(ctx, use[0])
			if err != nil {
				return "", "", fmt.Errorf("read the run history to verify %s: %w", uri, err)
			}
			for _, art := range arts {
				if art.URI == u && art.Digest != "" {
					return art.Digest, use[0], nil
				}
			}
		}
	}
	return "", "", nil
}
