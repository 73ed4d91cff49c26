package main

import (
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The pipeline of the artifacts get tests: one task that writes a file
// artifact (model) and a directory artifact (bundle).
var getTestPipeline = map[string]string{
	"pipeline.yaml": `name: getsec
tasks:
  make:
    component: make.yaml
`,
	"make.yaml": `name: make
outputs:
- {name: model, type: Model}
- {name: bundle, type: Dataset}
implementation:
  container:
    image: busybox
    command:
    - sh
    - -ec
    - |
      mkdir -p "$(dirname "$0")" "$1/sub"
      echo weights > "$0"
      echo a > "$1/a.txt"
      echo b > "$1/sub/b.txt"
    args: [{outputPath: model}, {outputPath: bundle}]
`,
}

// The artifacts' content, as snapshot reports it.
var (
	modelContent  = "weights\n"
	bundleContent = map[string]string{"a.txt": "a\n", "sub/": "<dir>", "sub/b.txt": "b\n"}
)

// getWorld is a run's artifacts and the places around them, all under one
// temporary directory (world):
//
//	world/st/state   the state directory (run history, local artifacts)
//	world/a/work     the working directory of every command
//	world/h/home     $HOME
//	world/out        where downloads go
type getWorld struct {
	c                       *cli
	world, work, home, out  string
	runID, model, bundle    string
	modelDigest, bundleDigt string
}

func newGetWorld(t *testing.T) *getWorld {
	t.Helper()
	c := newCLI(t)
	w := &getWorld{c: c, world: t.TempDir()}
	w.work = filepath.Join(w.world, "a", "work")
	w.home = filepath.Join(w.world, "h", "home")
	w.out = filepath.Join(w.world, "out")
	c.state = filepath.Join(w.world, "st", "state")
	c.dir = w.work
	c.env = append(c.env, "MLPIPE_STATE_DIR="+c.state, "HOME="+w.home) // the last value wins
	writeTree(t, w.work, map[string]string{"keep.txt": "mine\n", "notes/": "<dir>", "notes/n.txt": "n\n"})
	writeTree(t, w.home, map[string]string{".profile": "p\n"})
	writeTree(t, w.out, nil)

	r, last := c.runJSON(writeFiles(t, getTestPipeline))
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	w.runID = last["run_id"].(string)
	for _, tk := range c.show(w.runID).Tasks {
		for name, arts := range tk.Outputs.Artifacts {
			switch name {
			case "model":
				w.model, w.modelDigest = arts[0].URI, arts[0].Digest
			case "bundle":
				w.bundle, w.bundleDigt = arts[0].URI, arts[0].Digest
			}
		}
	}
	if w.model == "" || w.bundle == "" || w.modelDigest == "" || w.bundleDigt == "" {
		t.Fatalf("the run recorded no model or bundle artifact with a digest")
	}
	if filepath.Base(w.model) != "model" || filepath.Base(w.bundle) != "bundle" {
		t.Fatalf("artifact URIs %s, %s: want .../model and .../bundle", w.model, w.bundle)
	}
	return w
}

// writeTree creates dir with the files of tree (a name ending in / is a
// directory).
func writeTree(t *testing.T, dir string, tree map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range tree {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot maps every entry under dir (slash-separated, relative; a
// directory ends in /) to its content, "<dir>" or "-> link target".
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case rel == ".":
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "-> " + l
		case d.IsDir():
			out[rel+"/"] = "<dir>"
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = string(b)
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// under returns tree with every name prefixed by prefix/ (and prefix/
// itself as a directory).
func under(prefix string, tree map[string]string) map[string]string {
	out := map[string]string{prefix + "/": "<dir>"}
	for k, v := range tree {
		out[prefix+"/"+k] = v
	}
	return out
}

func merge(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// TestSecurityArtifactsGetCopiesLikeCp: an existing directory DEST receives
// the artifact under its name and keeps everything else (get X . used to
// replace the working directory with the artifact); a DEST that does not
// exist becomes the artifact; a file at the target is replaced.
func TestSecurityArtifactsGetCopiesLikeCp(t *testing.T) {
	w := newGetWorld(t)
	workBefore := snapshot(t, w.work)
	tests := []struct {
		name string
		uri  func() string
		dest string // relative to the working directory
		// prepare runs before the command, in world/out
		prepare map[string]string
		dir     string // the directory compared afterwards, relative to world
		want    map[string]string
	}{
		{name: "file into the working directory", uri: func() string { return w.model }, dest: ".",
			dir: "a/work", want: merge(workBefore, map[string]string{"model": modelContent})},
		{name: "directory into the working directory", uri: func() string { return w.bundle }, dest: ".",
			dir: "a/work", want: merge(workBefore, map[string]string{"model": modelContent}, under("bundle", bundleContent))},
		{name: "file into an existing directory", uri: func() string { return w.model }, dest: "../../out/d",
			prepare: map[string]string{"d/other": "x\n"},
			dir:     "out/d", want: map[string]string{"other": "x\n", "model": modelContent}},
		{name: "directory into an existing directory", uri: func() string { return w.bundle }, dest: "../../out/e/",
			prepare: map[string]string{"e/other": "x\n"},
			dir:     "out/e", want: merge(map[string]string{"other": "x\n"}, under("bundle", bundleContent))},
		{name: "file to a new name", uri: func() string { return w.model }, dest: "../../out/f/new.bin",
			dir: "out/f", want: map[string]string{"new.bin": modelContent}},
		{name: "directory to a new name", uri: func() string { return w.bundle }, dest: "../../out/g/copy",
			dir: "out/g", want: under("copy", bundleContent)},
		{name: "a file at the target is replaced", uri: func() string { return w.model }, dest: "../../out/h",
			prepare: map[string]string{"h/model": "old\n", "h/other": "x\n"},
			dir:     "out/h", want: map[string]string{"model": modelContent, "other": "x\n"}},
		{name: "an empty directory at the target is replaced", uri: func() string { return w.bundle }, dest: "../../out/i",
			prepare: map[string]string{"i/bundle/": "<dir>"},
			dir:     "out/i", want: under("bundle", bundleContent)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writeTree(t, w.out, tt.prepare)
			r := w.c.run("artifacts", "get", tt.uri(), tt.dest)
			if r.code != 0 {
				t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			if d := cmp.Diff(tt.want, snapshot(t, filepath.Join(w.world, tt.dir))); d != "" {
				t.Errorf("%s after get (-want +got):\n%s", tt.dir, d)
			}
		})
	}
}

// TestSecurityArtifactsGetRefuses: targets that are, contain or lie in the
// state directory, that are or contain the working directory, $HOME or the
// artifact, and / itself are refused with exit 2, even with --force, and
// nothing changes.
func TestSecurityArtifactsGetRefuses(t *testing.T) {
	w := newGetWorld(t)
	src := filepath.Join(w.world, "src")
	// Local files named after the protected directories, to aim at them.
	writeTree(t, src, map[string]string{
		"state": "s\n", "st/x": "x\n", "a/x": "x\n", "work/x": "x\n", "h/x": "x\n", "home/x": "x\n",
		"s/keep/s/f": "f\n", "f": "f\n",
	})
	if err := os.Symlink(w.c.state, filepath.Join(w.out, "to-state")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.world, "elsewhere"), []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(w.world, "elsewhere"), filepath.Join(w.out, "model")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		why  string
	}{
		{"the state directory", []string{w.model, w.c.state}, "inside the state directory"},
		{"the state directory with --force", []string{w.model, w.c.state, "--force"}, "inside the state directory"},
		{"the state directory through a link", []string{w.model, filepath.Join(w.out, "to-state"), "--force"}, "inside the state directory"},
		{"inside the state directory", []string{w.model, filepath.Join(w.c.state, "artifacts")}, "inside the state directory"},
		{"the state directory itself", []string{filepath.Join(src, "state"), filepath.Join(w.world, "st"), "--force"}, "it is the state directory"},
		{"an ancestor of the state directory", []string{filepath.Join(src, "st"), w.world, "--force"}, "it contains the state directory"},
		{"the working directory", []string{filepath.Join(src, "work"), filepath.Join(w.world, "a"), "--force"}, "it is the working directory"},
		{"an ancestor of the working directory", []string{filepath.Join(src, "a"), w.world, "--force"}, "it contains the working directory"},
		{"$HOME", []string{filepath.Join(src, "home"), filepath.Join(w.world, "h"), "--force"}, "it is your home directory"},
		{"an ancestor of $HOME", []string{filepath.Join(src, "h"), w.world, "--force"}, "it contains your home directory"},
		{"the artifact itself", []string{filepath.Join(src, "s", "keep", "s"), filepath.Join(src, "s", "keep"), "--force"}, "it is the artifact itself"},
		{"an ancestor of the artifact", []string{filepath.Join(src, "s", "keep", "s"), src, "--force"}, "it contains the artifact"},
		{"inside the artifact", []string{filepath.Join(src, "s", "keep", "s"), filepath.Join(src, "s", "keep", "s")}, "inside the artifact"},
		{"a file artifact onto itself", []string{filepath.Join(src, "f"), filepath.Join(src, "f")}, "it is the artifact itself"},
		{"a symbolic link at the target", []string{w.model, w.out, "--force"}, "symbolic link"},
	}
	before := snapshot(t, w.world)
	safe := true
	for _, tt := range tests {
		safe = t.Run(tt.name, func(t *testing.T) {
			r := w.c.run(append([]string{"artifacts", "get"}, tt.args...)...)
			if r.code != 2 || !strings.Contains(r.stderr, "refusing to write") || !strings.Contains(r.stderr, tt.why) {
				t.Errorf("exit %d, want 2 and %q\n%s%s", r.code, tt.why, r.stdout, r.stderr)
			}
			if d := cmp.Diff(before, snapshot(t, w.world)); d != "" {
				t.Errorf("the command changed files (-before +after):\n%s", d)
			}
		}) && safe
	}
	// The history is intact.
	if s := w.c.show(w.runID); s.State != "SUCCEEDED" || len(s.Tasks) != 1 {
		t.Errorf("runs show %s after the refusals: %+v", w.runID, s)
	}
	// / itself: only asked of a binary that refused all the above (one that
	// replaces DEST would try to remove /).
	if !safe {
		t.Fatal("not trying DEST=/ with a binary that did not refuse the cases above")
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "mlpipe-get-test-" + hex.EncodeToString(b)
	writeTree(t, src, map[string]string{name: "x\n"})
	for _, force := range []bool{false, true} {
		args := []string{"artifacts", "get", filepath.Join(src, name), "/"}
		if force {
			args = append(args, "--force")
		}
		r := w.c.run(args...)
		if r.code != 2 || !strings.Contains(r.stderr, "refusing to write into /") {
			t.Errorf("get into / (--force %v): exit %d, want 2\n%s%s", force, r.code, r.stdout, r.stderr)
		}
		if _, err := os.Lstat("/" + name); err == nil {
			os.Remove("/" + name)
			t.Errorf("get into / (--force %v) wrote /%s", force, name)
		}
	}
}

// TestSecurityArtifactsGetForce: a non-empty directory at the target is
// refused without --force and left alone; with --force it is replaced by
// exactly the artifact, and nothing is left beside it.
func TestSecurityArtifactsGetForce(t *testing.T) {
	w := newGetWorld(t)
	tests := []struct {
		name string
		uri  string
		old  map[string]string // world/out before
		want map[string]string // world/out after --force
	}{
		{"directory artifact", w.bundle,
			map[string]string{"bundle/old.txt": "old\n", "bundle/a.txt": "stale\n"},
			under("bundle", bundleContent)},
		{"file artifact", w.model,
			map[string]string{"model/old.txt": "old\n"},
			map[string]string{"model": modelContent}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.RemoveAll(w.out)
			writeTree(t, w.out, tt.old)
			before := snapshot(t, w.out)
			r := w.c.run("artifacts", "get", tt.uri, w.out)
			if r.code != 2 || !strings.Contains(r.stderr, "use --force") {
				t.Errorf("without --force: exit %d, want 2 and a hint at --force\n%s%s", r.code, r.stdout, r.stderr)
			}
			if d := cmp.Diff(before, snapshot(t, w.out)); d != "" {
				t.Errorf("without --force the directory changed (-before +after):\n%s", d)
			}
			w.c.mustRun("artifacts", "get", tt.uri, w.out, "--force")
			if d := cmp.Diff(tt.want, snapshot(t, w.out)); d != "" {
				t.Errorf("with --force (-want +got):\n%s", d)
			}
		})
	}
}

// TestSecurityArtifactsGetVerifiesHistory: an artifact changed after the
// run recorded it does not verify against the digest in the history: exit
// 1, and nothing is written (what was at the target stays).
func TestSecurityArtifactsGetVerifiesHistory(t *testing.T) {
	w := newGetWorld(t)
	// Untouched, the download says it matched the record.
	r := w.c.mustRun("artifacts", "get", w.model, filepath.Join(w.out, "ok"))
	if !strings.Contains(r.stdout, w.modelDigest) || !strings.Contains(r.stdout, "as run "+w.runID+" recorded it") {
		t.Errorf("get of a recorded artifact does not report the verification:\n%s", r.stdout)
	}
	tests := []struct {
		name   string
		uri    string
		tamper func(t *testing.T)
		dest   string
		old    map[string]string // world/out before and after
	}{
		{"file changed", w.model, func(t *testing.T) {
			if err := os.WriteFile(w.model, []byte("poisoned\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "model", nil},
		{"file changed, a previous copy at the target", w.model, func(t *testing.T) {}, "", map[string]string{"model": "previous\n"}},
		{"file added to a directory", w.bundle, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(w.bundle, "sub", "evil.py"), []byte("import os\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "", map[string]string{"keep": "k\n"}},
		{"directory with --force over a previous copy", w.bundle, func(t *testing.T) {}, "", under("bundle", map[string]string{"a.txt": "previous\n"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.RemoveAll(w.out)
			writeTree(t, w.out, tt.old)
			tt.tamper(t)
			args := []string{"artifacts", "get", tt.uri, filepath.Join(w.out, tt.dest)}
			if strings.Contains(tt.name, "--force") {
				args = append(args, "--force")
			}
			r := w.c.run(args...)
			if r.code != 1 || !strings.Contains(r.stderr, "is not what run "+w.runID+" recorded") || !strings.Contains(r.stderr, "digest mismatch") {
				t.Errorf("exit %d, want 1 and a digest mismatch against run %s\n%s%s", r.code, w.runID, r.stdout, r.stderr)
			}
			want := tt.old
			if want == nil {
				want = map[string]string{}
			}
			if d := cmp.Diff(want, snapshot(t, w.out)); d != "" {
				t.Errorf("the failed get changed the destination (-want +got):\n%s", d)
			}
		})
	}
}
