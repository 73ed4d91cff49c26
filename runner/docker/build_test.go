package docker

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// writeTree creates files (path → content) under a new directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func rels(files []contextFile) []string {
	out := make([]string, 0, len(files))
	for _, f := range files {
		out = append(out, f.Rel)
	}
	return out
}

func TestContextFilesDockerignore(t *testing.T) {
	t.Parallel()
	base := map[string]string{
		"Dockerfile":         "FROM scratch\n",
		"component.py":       "print(1)\n",
		"data/big.bin":       "xxxx",
		"data/keep.txt":      "k",
		"src/a.py":           "a",
		"src/__pycache__/x":  "c",
		"notes.md":           "n",
		"nested/dir/file.go": "g",
	}
	tests := []struct {
		name   string
		ignore string
		want   []string
	}{
		{name: "no .dockerignore", want: []string{"Dockerfile", "component.py", "data", "data/big.bin", "data/keep.txt", "nested", "nested/dir", "nested/dir/file.go", "notes.md", "src", "src/__pycache__", "src/__pycache__/x", "src/a.py"}},
		{name: "patterns", ignore: "# comment\n*.md\n**/__pycache__\nnested\n",
			want: []string{".dockerignore", "Dockerfile", "component.py", "data", "data/big.bin", "data/keep.txt", "src", "src/a.py"}},
		{name: "exception under an excluded directory", ignore: "data\n!data/keep.txt\n",
			want: []string{".dockerignore", "Dockerfile", "component.py", "data/keep.txt", "nested", "nested/dir", "nested/dir/file.go", "notes.md", "src", "src/__pycache__", "src/__pycache__/x", "src/a.py"}},
		{name: "Dockerfile and .dockerignore are always sent", ignore: "*\n",
			want: []string{".dockerignore", "Dockerfile"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			files := map[string]string{}
			for k, v := range base {
				files[k] = v
			}
			if tt.ignore != "" {
				files[".dockerignore"] = tt.ignore
			}
			dir := writeTree(t, files)
			got, err := contextFiles(dir)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, rels(got)); d != "" {
				t.Errorf("context (-want +got):\n%s", d)
			}
		})
	}
}

func TestContextFilesNeedsDockerfile(t *testing.T) {
	t.Parallel()
	if _, err := contextFiles(writeTree(t, map[string]string{"a": "b"})); err == nil || !strings.Contains(err.Error(), "has no Dockerfile") {
		t.Fatalf("got %v, want a missing Dockerfile error", err)
	}
}

func TestContextHash(t *testing.T) {
	t.Parallel()
	files := map[string]string{"Dockerfile": "FROM x\n", "app.py": "print(1)\n", ".dockerignore": "ignored.txt\n", "ignored.txt": "1"}
	hashOf := func(t *testing.T, dir string, args map[string]*string, bases []string) string {
		t.Helper()
		fs, err := contextFiles(dir)
		if err != nil {
			t.Fatal(err)
		}
		h, err := contextHash(dir, fs, args, bases)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	dir := writeTree(t, files)
	h0 := hashOf(t, dir, nil, nil)
	if h := hashOf(t, writeTree(t, files), nil, nil); h != h0 {
		t.Error("the same files in another directory hash differently")
	}
	// Timestamps do not count.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "app.py"), old, old); err != nil {
		t.Fatal(err)
	}
	if h := hashOf(t, dir, nil, nil); h != h0 {
		t.Error("a timestamp changed the hash")
	}
	if err := os.WriteFile(filepath.Join(dir, "ignored.txt"), []byte("2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if h := hashOf(t, dir, nil, nil); h != h0 {
		t.Error("an ignored file changed the hash")
	}
	v1, v2 := "1", "2"
	changes := []struct {
		name  string
		hash  func() string
		setup func()
	}{
		{name: "build arg", hash: func() string { return hashOf(t, dir, map[string]*string{"V": &v1}, nil) }},
		{name: "other build arg value", hash: func() string { return hashOf(t, dir, map[string]*string{"V": &v2}, nil) }},
		{name: "base image", hash: func() string { return hashOf(t, dir, nil, []string{"x=sha256:1"}) }},
		{name: "file mode", setup: func() { os.Chmod(filepath.Join(dir, "app.py"), 0o755) }},
		{name: "file content", setup: func() { os.WriteFile(filepath.Join(dir, "app.py"), []byte("print(2)\n"), 0o755) }},
		{name: "new file", setup: func() { os.WriteFile(filepath.Join(dir, "more.py"), nil, 0o644) }},
	}
	seen := map[string]string{h0: "original"}
	for _, c := range changes {
		if c.setup != nil {
			c.setup()
		}
		h := hashOf(t, dir, nil, nil)
		if c.hash != nil {
			h = c.hash()
		}
		if prev, ok := seen[h]; ok {
			t.Errorf("%s: same hash as %s", c.name, prev)
		}
		seen[h] = c.name
	}
}

func TestWriteContext(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{"Dockerfile": "FROM scratch\n", "bin/run.sh": "#!/bin/sh\n", "skip.log": "x", ".dockerignore": "*.log\n"})
	if err := os.Chmod(filepath.Join(dir, "bin/run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("bin/run.sh", filepath.Join(dir, "run")); err != nil {
		t.Fatal(err)
	}
	files, err := contextFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeContext(&buf, dir, files); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	var got []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(contextTime) {
			t.Errorf("%s: uid %d gid %d mtime %v", h.Name, h.Uid, h.Gid, h.ModTime)
		}
		desc := h.Name
		switch h.Typeflag {
		case tar.TypeReg:
			b, _ := io.ReadAll(tr)
			desc += " " + string(b) + " " + os.FileMode(h.Mode).String()
		case tar.TypeSymlink:
			desc += " -> " + h.Linkname
		}
		got = append(got, desc)
	}
	want := []string{".dockerignore *.log\n -rw-r--r--", "Dockerfile FROM scratch\n -rw-r--r--", "bin/", "bin/run.sh #!/bin/sh\n -rwxr-xr-x", "run -> bin/run.sh"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("tar entries (-want +got):\n%s", d)
	}
}

func TestBaseImages(t *testing.T) {
	t.Parallel()
	py := "mlpipe/python:3"
	tests := []struct {
		name       string
		dockerfile string
		args       map[string]*string
		want       []string
	}{
		{name: "plain", dockerfile: "FROM busybox:1.36\nRUN true\n", want: []string{"busybox:1.36"}},
		{name: "scratch", dockerfile: "FROM scratch\n"},
		{name: "ARG default", dockerfile: "ARG BASE_IMAGE=mlpipe/busybox:latest\nFROM ${BASE_IMAGE}\n", want: []string{"mlpipe/busybox:latest"}},
		{name: "build arg wins", dockerfile: "ARG BASE_IMAGE=mlpipe/busybox:latest\nFROM $BASE_IMAGE\n", args: map[string]*string{"BASE_IMAGE": &py}, want: []string{py}},
		{name: "unresolved", dockerfile: "ARG BASE\nFROM ${BASE}:3\n"},
		{name: "stages, flags, continuation, comments",
			dockerfile: "# syntax\nFROM --platform=linux/amd64 golang:1.26 AS build\nRUN go build \\\n  ./...\nFROM build AS test\nfrom debian:bookworm\nCOPY --from=build /x /x\n",
			want:       []string{"golang:1.26", "debian:bookworm"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if d := cmp.Diff(tt.want, baseImages([]byte(tt.dockerfile), tt.args)); d != "" {
				t.Errorf("base images (-want +got):\n%s", d)
			}
		})
	}
}
