package storage_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

// TestLocalStaysInsideTheStore: a directory of the store swapped for a
// link to elsewhere (as a step could do to its own output directory)
// does not make Put write, or Delete remove, anything outside the store.
func TestLocalStaysInsideTheStore(t *testing.T) {
	s, err := storage.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	victim := filepath.Join(outside, "x")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(s.Root(), "link")); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{filepath.Join(s.Root(), "link", "x"), filepath.Join(s.Root(), "link", "sub", "y")} {
		if _, err := s.Put(t.Context(), u, src); err == nil {
			t.Errorf("Put(%s) went through the link", u)
		}
	}
	if err := s.Delete(t.Context(), filepath.Join(s.Root(), "link", "x")); err == nil {
		t.Error("Delete went through the link")
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "keep" {
		t.Errorf("the file outside the store: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(outside, "sub")); err == nil {
		t.Error("a directory was made outside the store")
	}
}

// TestLocalCreateNeverReplaces: Create stores a file or directory only
// where nothing is; of several creating the same URI at once, exactly one
// succeeds and its content is what stays.
func TestLocalCreateNeverReplaces(t *testing.T) {
	s := newLocal(t)
	for _, kind := range []string{"file", "dir"} {
		t.Run(kind, func(t *testing.T) {
			u := filepath.Join(s.Root(), "registry", kind, "v1")
			srcs := make([]string, 8)
			for i := range srcs {
				srcs[i] = filepath.Join(t.TempDir(), "src")
				content := []byte(fmt.Sprintf("version from creator %d", i))
				p := srcs[i]
				if kind == "dir" {
					p = filepath.Join(srcs[i], "model.bin")
				}
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, content, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			results := make([]error, len(srcs))
			infos := make([]runner.ArtifactInfo, len(srcs))
			for i := range srcs {
				wg.Go(func() { infos[i], results[i] = s.Create(t.Context(), u, srcs[i]) })
			}
			wg.Wait()
			winner := -1
			for i, err := range results {
				switch {
				case err == nil && winner >= 0:
					t.Errorf("creators %d and %d both succeeded", winner, i)
				case err == nil:
					winner = i
				case !errors.Is(err, runner.ErrArtifactExists):
					t.Errorf("creator %d: %v", i, err)
				}
			}
			if winner < 0 {
				t.Fatal("no creator succeeded")
			}
			got, err := s.Digest(t.Context(), u)
			if err != nil || got.Digest != infos[winner].Digest {
				t.Errorf("stored %+v, %v; the winner stored %+v", got, err, infos[winner])
			}
			if _, err := s.Create(t.Context(), u, srcs[0]); !errors.Is(err, runner.ErrArtifactExists) {
				t.Errorf("Create over an existing artifact: %v", err)
			}
			var left []string
			filepath.WalkDir(filepath.Dir(u), func(p string, d fs.DirEntry, err error) error {
				if strings.HasSuffix(p, ".mlpipe-tmp") {
					left = append(left, p)
				}
				return nil
			})
			if len(left) > 0 {
				t.Errorf("temporary copies left: %v", left)
			}
		})
	}
}
