package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/mlpipe/mlpipe/storage"
	"github.com/mlpipe/mlpipe/storage/storagetest"
)

// minioCLI starts a real MinIO server and returns a CLI configured for it
// (the bucket is created on first use).
func minioCLI(t *testing.T) (*cli, *storagetest.MinIOServer) {
	t.Helper()
	c := newCLI(t)
	return c, startMinIOFor(t, c)
}

// startMinIOFor starts a MinIO server and points c at it.
func startMinIOFor(t *testing.T, c *cli) *storagetest.MinIOServer {
	t.Helper()
	srv := storagetest.StartMinIO(t)
	c.env = append(c.env,
		"MLPIPE_MINIO_ENDPOINT="+srv.Endpoint,
		"MLPIPE_MINIO_ACCESS_KEY="+srv.AccessKey,
		"MLPIPE_MINIO_SECRET_KEY="+srv.SecretKey,
		"MLPIPE_MINIO_SECURE=false",
		"MLPIPE_MINIO_CREATE_BUCKET=true",
	)
	return srv
}

// TestTrainingWithMinIO runs the training pipeline with its artifacts in a
// real MinIO server, in KFP's layout; a second run is served from the
// cache with the same objects, and runs rm deletes them.
func TestTrainingWithMinIO(t *testing.T) {
	c, srv := minioCLI(t)
	root := "minio://mlpipeline/v2/artifacts"
	args := []string{"pipelines/training", "--pipeline-root", root, "-p", "rows=300", "-p", "epochs=5", "-p", "threshold=0.5"}
	r, last := c.runJSON(args...)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout+r.stderr, srv.SecretKey) {
		t.Fatal("the secret key appears in mlpipe's output")
	}
	runID := last["run_id"].(string)
	s := c.show(runID)
	store, err := storage.OpenMinIO(t.Context(), root, srv.Options())
	if err != nil {
		t.Fatal(err)
	}
	var uris, published []string
	for _, tk := range s.Tasks {
		if tk.State != "SUCCEEDED" {
			t.Errorf("%s: %s", tk.Name, tk.State)
		}
		for name, arts := range tk.Outputs.Artifacts {
			for _, a := range arts {
				want := root + "/training/" + runID + "/"
				if tk.Name == "publish" && name == "registered_model" {
					// The model registry publishes outside the run, in
					// <pipeline root>/registry/<model>/<version>.
					want = root + "/registry/classifier/v"
					published = append(published, a.URI)
					if v := tk.Outputs.Parameters["version"]; !strings.HasSuffix(a.URI, fmt.Sprint("/", v)) {
						t.Errorf("registered at %s, version %v", a.URI, v)
					}
				} else if !strings.HasSuffix(a.URI, "/"+name) {
					t.Errorf("%s.%s at %s", tk.Name, name, a.URI)
				}
				if !strings.HasPrefix(a.URI, want) {
					t.Errorf("%s.%s at %s, want under %s", tk.Name, name, a.URI, want)
				}
				info, err := store.Stat(t.Context(), a.URI)
				if err != nil {
					t.Errorf("%s: %v", a.URI, err)
					continue
				}
				if a.Digest == "" || (info.Digest != "" && info.Digest != a.Digest) {
					t.Errorf("%s: recorded digest %q, stored %q", a.URI, a.Digest, info.Digest)
				}
				if !slices.Contains(published, a.URI) {
					uris = append(uris, a.URI)
				}
			}
		}
	}
	if len(published) != 1 {
		t.Fatalf("published %v, want one model version", published)
	}
	for _, f := range []string{"model.json", "metadata.json"} {
		if _, err := store.Stat(t.Context(), published[0]+"/"+f); err != nil {
			t.Errorf("registry: %v", err)
		}
	}
	// mlpipe artifacts lists and downloads the registry in MinIO.
	if ls := c.mustRun("artifacts", "ls", root+"/registry").stdout; !strings.Contains(ls, published[0]+"/model.json") || strings.Count(ls, "\n") != 2 {
		t.Errorf("artifacts ls %s/registry:\n%s", root, ls)
	}
	got := filepath.Join(t.TempDir(), "version")
	if out := c.mustRun("artifacts", "get", published[0], got).stdout; !strings.Contains(out, "sha256:") {
		t.Errorf("artifacts get does not give the digest: %s", out)
	}
	if _, err := os.Stat(filepath.Join(got, "model.json")); err != nil {
		t.Error(err)
	}
	if len(uris) < 6 {
		t.Fatalf("only %d artifacts in MinIO", len(uris))
	}
	// The history never holds the secret either.
	db, _ := os.ReadFile(filepath.Join(c.state, "mlpipe.db"))
	if strings.Contains(string(db), srv.SecretKey) {
		t.Error("the secret key is in the run history")
	}
	r2, last2 := c.runJSON(args...)
	if r2.code != 0 {
		t.Fatalf("second run: exit %d\n%s", r2.code, r2.stderr)
	}
	for _, tk := range c.show(last2["run_id"].(string)).Tasks {
		if tk.Name != "summary" && tk.State != "CACHED" {
			t.Errorf("second run: %s is %s, want CACHED", tk.Name, tk.State)
		}
		// The same model is not published twice: the cached task points
		// at the version the first run published.
		if a := tk.Outputs.Artifacts["registered_model"]; tk.Name == "publish" && (len(a) != 1 || a[0].URI != published[0]) {
			t.Errorf("second run: publish at %v, want %s", a, published[0])
		}
	}
	c.mustRun("runs", "rm", last2["run_id"].(string), runID)
	for _, u := range uris {
		if _, err := store.Stat(t.Context(), u); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s after runs rm: %v", u, err)
		}
	}
	// The registry outlives the runs that published to it.
	for _, u := range published {
		if _, err := store.Stat(t.Context(), u); err != nil {
			t.Errorf("%s after runs rm: %v", u, err)
		}
	}
}

func TestMinIOErrorsAreClear(t *testing.T) {
	c, srv := minioCLI(t)
	c.env = append(c.env, "MLPIPE_MINIO_SECRET_KEY=wrong-"+srv.SecretKey)
	r := c.run("run", "pipelines/quickstart", "--pipeline-root", "minio://mlpipeline/x")
	if r.code == 0 || strings.Contains(r.stderr+r.stdout, srv.SecretKey) || !strings.Contains(r.stderr, srv.Endpoint) {
		t.Errorf("wrong secret: exit %d\n%s", r.code, r.stderr)
	}
	c2 := newCLI(t)
	if r := c2.run("run", "pipelines/quickstart", "--pipeline-root", "minio://mlpipeline/x"); r.code != 2 || !strings.Contains(r.stderr, "MLPIPE_MINIO_ENDPOINT") {
		t.Errorf("no endpoint: exit %d\n%s", r.code, r.stderr)
	}
}

// The CLI seals its uploads with the key it keeps in the state directory
// (made on first use, 0600); minio.verify: sha256 opens the store without
// it (every download hashed, nothing sealed); anything else is a usage
// error.
func TestMinIOChecksumKeyAndVerify(t *testing.T) {
	c, srv := minioCLI(t)
	cl, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	seals := func(root string) (sealed, all int) {
		t.Helper()
		r, last := c.runJSON("pipelines/quickstart", "--pipeline-root", root, "--no-cache")
		if r.code != 0 {
			t.Fatalf("run into %s: exit %d\n%s", root, r.code, r.stderr)
		}
		for _, tk := range c.show(last["run_id"].(string)).Tasks {
			for _, arts := range tk.Outputs.Artifacts {
				for _, a := range arts {
					_, bucket, key, err := storage.ParseObjectURI(a.URI)
					if err != nil {
						t.Fatal(err)
					}
					oi, err := cl.StatObject(t.Context(), bucket, key, minio.StatObjectOptions{})
					if err != nil {
						continue // a directory artifact: its files are under key/
					}
					all++
					if oi.UserMetadata["Mlpipe-Seal"] != "" {
						sealed++
					}
				}
			}
		}
		return sealed, all
	}
	if sealed, all := seals("minio://mlpipeline/sealed"); all == 0 || sealed != all {
		t.Errorf("default (minio.verify: checksum): %d of %d file artifacts sealed, want all", sealed, all)
	}
	st, err := os.Stat(filepath.Join(c.state, "keys", "checksum.key"))
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() != 32 {
		t.Errorf("checksum key: %v, %v", st, err)
	}
	c.env = append(c.env, "MLPIPE_MINIO_VERIFY=sha256")
	if sealed, all := seals("minio://mlpipeline/hashed"); all == 0 || sealed != 0 {
		t.Errorf("minio.verify: sha256: %d of %d file artifacts sealed, want none", sealed, all)
	}
	c.env = append(c.env, "MLPIPE_MINIO_VERIFY=crc")
	if r := c.run("run", "pipelines/quickstart", "--pipeline-root", "minio://mlpipeline/x"); r.code != 2 || !strings.Contains(r.stderr, "minio.verify") {
		t.Errorf("minio.verify: crc: exit %d\n%s", r.code, r.stderr)
	}
}
