package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mlpipe/mlpipe/storage"
)

func init() { extraCommands = append(extraCommands, newArtifactsCmd) }

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
	get := &cobra.Command{
		Use:   "get URI DEST",
		Short: "Download an artifact (a file or a directory) to DEST",
		Long: `Download the artifact at URI (a file or a directory artifact) to the path DEST,
which it replaces. Objects in MinIO/S3 are checked against the sha256 stored with
them, and a download that does not verify leaves nothing at DEST; from the local
store the copy is made as it is.`,
		Args: args(2, 2),
		RunE: func(cmd *cobra.Command, argv []string) error {
			return artifactsGet(cmd.Context(), a, argv[0], argv[1])
		},
	}
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
		root = filepath.Join(a.cfg.StateDir, "artifacts")
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
			st, err = storage.NewLocal(filepath.Join(a.cfg.StateDir, "artifacts"))
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
		fmt.Fprintf(tw, "%s\t  %s\n", byteSize(o.Size), o.URI)
		total += o.Size
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "%d files, %s under %s\n", len(objs), byteSize(total), prefix)
	return nil
}

func artifactsGet(ctx context.Context, a *app, uri, dest string) error {
	s, uri, err := a.artifactStoreFor(uri)
	if err != nil {
		return err
	}
	dest, err = filepath.Abs(dest)
	if err != nil {
		return err
	}
	info, err := s.Get(ctx, uri, dest, "")
	if errors.Is(err, storage.ErrNotFound) {
		return usagef("no artifact at %s (see: mlpipe artifacts ls)", uri)
	}
	if err != nil {
		return err
	}
	what := "file"
	if info.Dir {
		what = "directory"
	}
	fmt.Fprintf(a.stdout, "%s -> %s (%s, %s", uri, dest, what, byteSize(info.Size))
	if info.Digest != "" {
		fmt.Fprintf(a.stdout, ", %s", info.Digest)
	}
	fmt.Fprintln(a.stdout, ")")
	return nil
}

// byteSize formats n bytes for people: 512 B, 10.0 KiB, 1.5 GiB.
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
