package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mlpipe/mlpipe/contract"
	"github.com/mlpipe/mlpipe/storage"
)

// LargeSize is the size of the suite's large file: above minio-go's
// smallest part size, so an object store uploads it in several parts.
const LargeSize = 40 << 20

// Run runs the conformance suite against the stores newStore returns, one
// fresh store per subtest.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"FileRoundTrip", testFileRoundTrip},
		{"EmptyFile", testEmptyFile},
		{"LargeFile", testLargeFile},
		{"DirRoundTrip", testDirRoundTrip},
		{"EmptyDir", testEmptyDir},
		{"DigestMismatch", testDigestMismatch},
		{"NotFound", testNotFound},
		{"List", testList},
		{"DeletePrefix", testDeletePrefix},
		{"Overwrite", testOverwrite},
		{"Concurrent", testConcurrent},
		{"Canceled", testCanceled},
		{"CanceledMidway", testCanceledMidway},
		{"ExistsAndDigest", testExistsAndDigest},
		{"CreateNeverReplaces", testCreateNeverReplaces},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// uri returns an artifact URI of the store, as the runner makes them.
func uri(s storage.Store, run, task, output string) string {
	return strings.TrimSuffix(s.RunRoot("conformance", run), "/") + "/" + task + "/" + output
}

// writeFile writes data to a new file under dir and returns its path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// randomBytes returns n pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// makeTree writes files (slash path → content) under a new directory.
func makeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tree")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		writeFile(t, dir, name, []byte(data))
	}
	return dir
}

// readTree reads every regular file under dir.
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func fileDigest(t *testing.T, p string) (string, int64) {
	t.Helper()
	d, n, err := storage.FileDigest(p)
	if err != nil {
		t.Fatal(err)
	}
	return d, n
}

func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	entries, err := storage.ScanDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return storage.TreeDigest(entries)
}

// mustPut stores localPath at u and checks the returned info.
func mustPut(t *testing.T, s storage.Store, u, localPath string) contract.ArtifactInfo {
	t.Helper()
	info, err := s.Put(t.Context(), u, localPath)
	if err != nil {
		t.Fatalf("Put(%s): %v", u, err)
	}
	return info
}

// checkStat compares Stat with want; a store may leave Digest empty.
func checkStat(t *testing.T, s storage.Store, u string, want contract.ArtifactInfo) {
	t.Helper()
	got, err := s.Stat(t.Context(), u)
	if err != nil {
		t.Fatalf("Stat(%s): %v", u, err)
	}
	if got.Digest == "" {
		want.Digest = ""
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Stat(%s) (-want +got):\n%s", u, diff)
	}
}

// checkGone asserts that nothing is stored at u.
func checkGone(t *testing.T, s storage.Store, u string) {
	t.Helper()
	if info, err := s.Stat(t.Context(), u); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(%s) = %+v, %v; want ErrNotFound", u, info, err)
	}
}

func listed(t *testing.T, s storage.Store, prefix string) []storage.Object {
	t.Helper()
	var got []storage.Object
	err := s.List(t.Context(), prefix, func(o storage.Object) error {
		got = append(got, o)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%s): %v", prefix, err)
	}
	slices.SortFunc(got, func(a, b storage.Object) int { return strings.Compare(a.URI, b.URI) })
	return got
}

func testFileRoundTrip(t *testing.T, s storage.Store) {
	data := []byte("accuracy: 0.93\n")
	src := writeFile(t, t.TempDir(), "metrics", data)
	digest, size := fileDigest(t, src)
	want := contract.ArtifactInfo{Digest: digest, Size: size}
	u := uri(s, "run", "train", "metrics")

	if diff := cmp.Diff(want, mustPut(t, s, u, src)); diff != "" {
		t.Errorf("Put (-want +got):\n%s", diff)
	}
	checkStat(t, s, u, want)
	for _, wantDigest := range []string{"", digest} {
		dst := filepath.Join(t.TempDir(), "in", "metrics")
		info, err := s.Get(t.Context(), u, dst, wantDigest)
		if err != nil {
			t.Fatalf("Get(want %q): %v", wantDigest, err)
		}
		if info.Size != size || (info.Digest != "" && info.Digest != digest) || info.Dir {
			t.Errorf("Get(want %q) = %+v, want %+v", wantDigest, info, want)
		}
		got, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("Get(want %q) wrote %q, want %q", wantDigest, got, data)
		}
	}
}

func testEmptyFile(t *testing.T, s storage.Store) {
	src := writeFile(t, t.TempDir(), "empty", nil)
	digest, _ := fileDigest(t, src)
	u := uri(s, "run", "task", "empty")
	info := mustPut(t, s, u, src)
	if diff := cmp.Diff(contract.ArtifactInfo{Digest: digest}, info); diff != "" {
		t.Errorf("Put (-want +got):\n%s", diff)
	}
	checkStat(t, s, u, info)
	dst := filepath.Join(t.TempDir(), "empty")
	if _, err := s.Get(t.Context(), u, dst, digest); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dst); err != nil || st.Size() != 0 || st.IsDir() {
		t.Errorf("Get wrote %v, %v; want an empty file", st, err)
	}
}

func testLargeFile(t *testing.T, s storage.Store) {
	data := randomBytes(LargeSize+12345, 1)
	src := writeFile(t, t.TempDir(), "model.bin", data)
	digest, size := fileDigest(t, src)
	u := uri(s, "run", "train", "model")
	info := mustPut(t, s, u, src)
	if diff := cmp.Diff(contract.ArtifactInfo{Digest: digest, Size: size}, info); diff != "" {
		t.Errorf("Put (-want +got):\n%s", diff)
	}
	dst := filepath.Join(t.TempDir(), "model.bin")
	if _, err := s.Get(t.Context(), u, dst, digest); err != nil {
		t.Fatal(err)
	}
	if got, _ := fileDigest(t, dst); got != digest {
		t.Errorf("Get wrote content with digest %s, want %s", got, digest)
	}
}

func testDirRoundTrip(t *testing.T, s storage.Store) {
	files := map[string]string{
		"saved_model.pb":                 "graph",
		"variables/variables.index":      "index",
		"variables/variables.data-00000": strings.Repeat("w", 100_000),
		"assets/a/b/c/deep.txt":          "deep",
		"assets/empty":                   "",
	}
	src := makeTree(t, files)
	want := contract.ArtifactInfo{Digest: treeDigest(t, src), Size: 100_000 + 5 + 5 + 4, Dir: true}
	u := uri(s, "run", "train", "model")
	if diff := cmp.Diff(want, mustPut(t, s, u, src)); diff != "" {
		t.Errorf("Put (-want +got):\n%s", diff)
	}
	checkStat(t, s, u, want)
	for _, wantDigest := range []string{"", want.Digest} {
		dst := filepath.Join(t.TempDir(), "model")
		info, err := s.Get(t.Context(), u, dst, wantDigest)
		if err != nil {
			t.Fatalf("Get(want %q): %v", wantDigest, err)
		}
		if !info.Dir || info.Size != want.Size || (info.Digest != "" && info.Digest != want.Digest) {
			t.Errorf("Get(want %q) = %+v, want %+v", wantDigest, info, want)
		}
		if diff := cmp.Diff(files, readTree(t, dst)); diff != "" {
			t.Errorf("Get(want %q) tree (-want +got):\n%s", wantDigest, diff)
		}
	}
}

func testEmptyDir(t *testing.T, s storage.Store) {
	src := makeTree(t, nil)
	u := uri(s, "run", "task", "nothing")
	info := mustPut(t, s, u, src)
	want := contract.ArtifactInfo{Digest: storage.TreeDigest(nil), Dir: true}
	if diff := cmp.Diff(want, info); diff != "" {
		t.Errorf("Put (-want +got):\n%s", diff)
	}
	checkStat(t, s, u, want)
	dst := filepath.Join(t.TempDir(), "nothing")
	if _, err := s.Get(t.Context(), u, dst, want.Digest); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dst); err != nil || !st.IsDir() {
		t.Errorf("Get made %v, %v; want an empty directory", st, err)
	}
}

func testDigestMismatch(t *testing.T, s storage.Store) {
	wrong := "sha256:" + strings.Repeat("0", 64)
	file := writeFile(t, t.TempDir(), "f", []byte("data"))
	dir := makeTree(t, map[string]string{"a": "1", "b/c": "2"})
	for _, tc := range []struct{ name, src string }{{"file", file}, {"dir", dir}} {
		t.Run(tc.name, func(t *testing.T) {
			u := uri(s, "run", "task", tc.name)
			mustPut(t, s, u, tc.src)
			dst := filepath.Join(t.TempDir(), "out")
			_, err := s.Get(t.Context(), u, dst, wrong)
			if !errors.Is(err, storage.ErrDigestMismatch) {
				t.Fatalf("Get with a wrong digest: %v, want ErrDigestMismatch", err)
			}
			if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Get left %s after a mismatch (%v)", dst, err)
			}
			if left, _ := os.ReadDir(filepath.Dir(dst)); len(left) > 0 {
				t.Errorf("Get left %d entries beside %s after a mismatch", len(left), dst)
			}
		})
	}
}

func testNotFound(t *testing.T, s storage.Store) {
	u := uri(s, "run", "task", "missing")
	checkGone(t, s, u)
	dst := filepath.Join(t.TempDir(), "missing")
	if _, err := s.Get(t.Context(), u, dst, ""); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get: %v, want ErrNotFound", err)
	}
	if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Get of a missing artifact created %s", dst)
	}
	if got := listed(t, s, u); len(got) != 0 {
		t.Errorf("List of a missing prefix: %v", got)
	}
	if err := s.Delete(t.Context(), u); err != nil {
		t.Errorf("Delete of a missing prefix: %v", err)
	}
}

func testList(t *testing.T, s storage.Store) {
	file := writeFile(t, t.TempDir(), "f", []byte("12345"))
	dir := makeTree(t, map[string]string{"a": "1", "b/c": "22"})
	run1 := strings.TrimSuffix(s.RunRoot("conformance", "run1"), "/")
	run10 := strings.TrimSuffix(s.RunRoot("conformance", "run10"), "/")
	mustPut(t, s, run1+"/train/model", file)
	mustPut(t, s, run1+"/eval/data", dir)
	mustPut(t, s, run10+"/train/model", file)

	want := []storage.Object{
		{URI: run1 + "/eval/data/a", Size: 1},
		{URI: run1 + "/eval/data/b/c", Size: 2},
		{URI: run1 + "/train/model", Size: 5},
	}
	if diff := cmp.Diff(want, listed(t, s, run1)); diff != "" {
		t.Errorf("List(run1) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[2:], listed(t, s, run1+"/train/model")); diff != "" {
		t.Errorf("List(file artifact) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[:2], listed(t, s, run1+"/eval/data")); diff != "" {
		t.Errorf("List(dir artifact) (-want +got):\n%s", diff)
	}
	stop := errors.New("stop")
	if err := s.List(t.Context(), run1, func(storage.Object) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("List with a failing callback: %v, want the callback's error", err)
	}
}

func testDeletePrefix(t *testing.T, s storage.Store) {
	file := writeFile(t, t.TempDir(), "f", []byte("x"))
	dir := makeTree(t, map[string]string{"a": "1", "b/c": "2"})
	run1 := strings.TrimSuffix(s.RunRoot("conformance", "run1"), "/")
	run10 := strings.TrimSuffix(s.RunRoot("conformance", "run10"), "/")
	for _, r := range []string{run1, run10} {
		mustPut(t, s, r+"/train/model", file)
		mustPut(t, s, r+"/train/data", dir)
	}
	// One artifact, then a whole run.
	if err := s.Delete(t.Context(), run1+"/train/data"); err != nil {
		t.Fatal(err)
	}
	checkGone(t, s, run1+"/train/data")
	if _, err := s.Stat(t.Context(), run1+"/train/model"); err != nil {
		t.Errorf("deleting a sibling removed %s: %v", run1+"/train/model", err)
	}
	if err := s.Delete(t.Context(), run1); err != nil {
		t.Fatal(err)
	}
	checkGone(t, s, run1+"/train/model")
	if got := listed(t, s, run1); len(got) != 0 {
		t.Errorf("after Delete(run1), List(run1) = %v", got)
	}
	if got := listed(t, s, run10); len(got) != 3 {
		t.Errorf("Delete(run1) touched run10: List(run10) = %v", got)
	}
	checkStat(t, s, run10+"/train/data", contract.ArtifactInfo{Digest: treeDigest(t, dir), Size: 2, Dir: true})
}

func testOverwrite(t *testing.T, s storage.Store) {
	u := uri(s, "run", "task", "out")
	steps := []struct {
		name  string
		files map[string]string // nil: a file with content "file"
		file  string
	}{
		{name: "file", file: "first version"},
		{name: "file again", file: "second"},
		{name: "dir over file", files: map[string]string{"a": "1", "b/c": "2", "b/d": "3"}},
		{name: "smaller dir over dir", files: map[string]string{"b/c": "new"}},
		{name: "file over dir", file: "third"},
	}
	for _, st := range steps {
		var src string
		if st.files == nil {
			src = writeFile(t, t.TempDir(), "f", []byte(st.file))
		} else {
			src = makeTree(t, st.files)
		}
		info := mustPut(t, s, u, src)
		dst := filepath.Join(t.TempDir(), "got")
		if _, err := s.Get(t.Context(), u, dst, info.Digest); err != nil {
			t.Fatalf("%s: Get: %v", st.name, err)
		}
		if st.files == nil {
			if b, err := os.ReadFile(dst); err != nil || string(b) != st.file {
				t.Errorf("%s: Get wrote %q, %v; want %q", st.name, b, err, st.file)
			}
			if got := listed(t, s, u); len(got) != 1 {
				t.Errorf("%s: List = %v, want just the file", st.name, got)
			}
			continue
		}
		if diff := cmp.Diff(st.files, readTree(t, dst)); diff != "" {
			t.Errorf("%s: Get tree (-want +got):\n%s", st.name, diff)
		}
		if got := listed(t, s, u); len(got) != len(st.files) {
			t.Errorf("%s: List = %v, want %d files", st.name, got, len(st.files))
		}
	}
}

func testConcurrent(t *testing.T, s storage.Store) {
	const n = 8
	shared := uri(s, "run", "shared", "data")
	sharedSrc := makeTree(t, map[string]string{"x": "shared", "y/z": "shared too"})
	sharedInfo := mustPut(t, s, shared, sharedSrc)
	tmp := t.TempDir()
	errs := make(chan error, 4*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx := t.Context()
			data := randomBytes(64<<10+i, uint64(i))
			src := filepath.Join(tmp, fmt.Sprintf("src%d", i))
			if err := os.WriteFile(src, data, 0o644); err != nil {
				errs <- err
				return
			}
			u := uri(s, "run", fmt.Sprintf("task%d", i), "out")
			info, err := s.Put(ctx, u, src)
			if err != nil {
				errs <- fmt.Errorf("put %d: %w", i, err)
				return
			}
			dst := filepath.Join(tmp, fmt.Sprintf("dst%d", i))
			if _, err := s.Get(ctx, u, dst, info.Digest); err != nil {
				errs <- fmt.Errorf("get %d: %w", i, err)
			} else if got, _ := os.ReadFile(dst); !bytes.Equal(got, data) {
				errs <- fmt.Errorf("get %d: content differs", i)
			}
			if _, err := s.Get(ctx, shared, filepath.Join(tmp, fmt.Sprintf("shared%d", i)), sharedInfo.Digest); err != nil {
				errs <- fmt.Errorf("get shared %d: %w", i, err)
			}
			if _, err := s.Stat(ctx, shared); err != nil {
				errs <- fmt.Errorf("stat shared %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testCanceled(t *testing.T, s storage.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	src := writeFile(t, t.TempDir(), "f", []byte("data"))
	u := uri(s, "run", "task", "out")
	if _, err := s.Put(ctx, u, src); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context: %v, want context.Canceled", err)
	}
	checkGone(t, s, u)

	info := mustPut(t, s, u, src)
	dst := filepath.Join(t.TempDir(), "out")
	if _, err := s.Get(ctx, u, dst, info.Digest); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a canceled context: %v, want context.Canceled", err)
	}
	if _, err := os.Lstat(dst); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("canceled Get created %s", dst)
	}
}

// testCanceledMidway cancels transfers while they run: each either
// completes or fails with the context's error and leaves nothing that
// looks complete.
func testCanceledMidway(t *testing.T, s storage.Store) {
	big := writeFile(t, t.TempDir(), "big", randomBytes(LargeSize, 2))
	files := map[string]string{}
	for i := range 200 {
		files[fmt.Sprintf("part-%03d", i)] = string(randomBytes(4<<10, uint64(i)))
	}
	tree := makeTree(t, files)
	for _, tc := range []struct {
		name string
		src  string
	}{{"file", big}, {"dir", tree}} {
		for _, after := range []time.Duration{time.Millisecond, 20 * time.Millisecond, 100 * time.Millisecond} {
			t.Run(fmt.Sprintf("%s/%v", tc.name, after), func(t *testing.T) {
				u := uri(s, "run", "task", fmt.Sprintf("%s-%d", tc.name, after.Milliseconds()))
				ctx, cancel := context.WithTimeout(t.Context(), after)
				defer cancel()
				info, err := s.Put(ctx, u, tc.src)
				switch {
				case err == nil:
					got, err := s.Get(t.Context(), u, filepath.Join(t.TempDir(), "check"), info.Digest)
					if err != nil || got.Digest != info.Digest {
						t.Errorf("Put succeeded but Get = %+v, %v", got, err)
					}
				case errors.Is(err, context.DeadlineExceeded):
					checkGone(t, s, u)
				default:
					t.Errorf("Put: %v, want success or context.DeadlineExceeded", err)
				}
			})
		}
	}
}

// testExistsAndDigest: Exists sees file and directory artifacts and a URI
// that is a prefix of others, and nothing else; Digest of a local file or
// tree equals the digest Put reports for it.
func testExistsAndDigest(t *testing.T, s storage.Store) {
	ctx := t.Context()
	file, dir := uri(s, "run", "task", "file"), uri(s, "run", "task", "dir")
	task := strings.TrimSuffix(s.RunRoot("conformance", "run"), "/") + "/task"
	exists := func(u string, want bool) {
		t.Helper()
		if got, err := s.Exists(ctx, u); err != nil || got != want {
			t.Errorf("Exists(%s) = %v, %v; want %v", u, got, err, want)
		}
	}
	exists(file, false)
	exists(task, false)
	src := writeFile(t, t.TempDir(), "f", []byte("content"))
	tree := makeTree(t, map[string]string{"a": "1", "sub/b": "22"})
	fi, di := mustPut(t, s, file, src), mustPut(t, s, dir, tree)
	exists(file, true)
	exists(dir, true)
	exists(task, true)
	exists(uri(s, "run", "task", "fil"), false)
	empty := uri(s, "run", "task", "empty")
	exists(empty, false)
	mustPut(t, s, empty, t.TempDir())
	exists(empty, true)
	exists(uri(s, "run", "other", "file"), false)
	for _, tc := range []struct {
		local string
		want  contract.ArtifactInfo
	}{{src, fi}, {tree, di}} {
		got, err := s.Digest(ctx, tc.local)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Digest(%s) (-Put +Digest):\n%s", tc.local, diff)
		}
	}
}

// testCreateNeverReplaces: Create stores where nothing is, and refuses
// (ErrArtifactExists) where a file, a directory artifact or artifacts under
// the URI are, leaving them as they were; racing creators of the same
// content: at least one wins, the others succeed (same content) or get
// ErrArtifactExists.
func testCreateNeverReplaces(t *testing.T, s storage.Store) {
	ctx := t.Context()
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	b := filepath.Join(dir, "b")
	if err := os.WriteFile(a, []byte("first"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b, []byte("second"), 0o644); err != nil {
		t.Fatal(err)
	}
	u := uri(s, "run1", "publish", "model")
	if _, err := s.Create(ctx, u, a); err != nil {
		t.Fatalf("Create on nothing: %v", err)
	}
	if _, err := s.Create(ctx, u, b); !errors.Is(err, contract.ErrArtifactExists) {
		t.Fatalf("Create over a file = %v, want ErrArtifactExists", err)
	}
	got := filepath.Join(dir, "got")
	if _, err := s.Get(ctx, u, got, ""); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(got); string(b) != "first" {
		t.Errorf("after a refused Create the artifact holds %q", b)
	}
	// Something under the URI (it is a prefix of another artifact).
	under := uri(s, "run1", "publish", "tree") + "/v1"
	if _, err := s.Put(ctx, under, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, uri(s, "run1", "publish", "tree"), b); !errors.Is(err, contract.ErrArtifactExists) {
		t.Fatalf("Create over a prefix = %v, want ErrArtifactExists", err)
	}
	// Racing creators of one file.
	race := uri(s, "run1", "publish", "race")
	var wg sync.WaitGroup
	var won atomic.Int32
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Create(ctx, race, a); err == nil {
				won.Add(1)
			} else if !errors.Is(err, contract.ErrArtifactExists) {
				t.Errorf("racing Create: %v", err)
			}
		}()
	}
	wg.Wait()
	if won.Load() < 1 {
		t.Errorf("%d racing creators won, want at least 1", won.Load())
	}
}
