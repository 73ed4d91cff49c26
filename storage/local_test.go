package storage_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mlpipe/mlpipe/runner"
	"github.com/mlpipe/mlpipe/storage"
	"github.com/mlpipe/mlpipe/storage/storagetest"
)

func newLocal(t *testing.T) *storage.Local {
	t.Helper()
	s, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLocalConformance(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) storage.Store { return newLocal(t) })
}

// TestLocalInPlace covers the runner's usual case: the component wrote the
// artifact at its URI, and Put only digests it.
func TestLocalInPlace(t *testing.T) {
	t.Parallel()
	s := newLocal(t)
	u := filepath.Join(s.RunRoot("p", "r"), "task", "out")
	if err := os.MkdirAll(filepath.Dir(u), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(u, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := s.Put(t.Context(), u, u)
	if err != nil {
		t.Fatal(err)
	}
	digest, _, err := storage.FileDigest(u)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(runner.ArtifactInfo{Digest: digest, Size: 5}, info); diff != "" {
		t.Errorf("Put in place (-want +got):\n%s", diff)
	}
	if _, err := s.Get(t.Context(), u, u, digest); err != nil {
		t.Errorf("Get in place: %v", err)
	}
	if _, err := s.Get(t.Context(), "file://"+u, "", digest); err != nil {
		t.Errorf("Get of a file:// URI without a destination: %v", err)
	}
}

func TestLocalDeleteOutside(t *testing.T) {
	t.Parallel()
	s := newLocal(t)
	for _, p := range []string{s.Root(), filepath.Dir(s.Root()), "relative/path"} {
		if err := s.Delete(t.Context(), p); err == nil {
			t.Errorf("Delete(%q) succeeded, want a refusal", p)
		}
	}
}
