package pywheel

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func testPackage() Package {
	return Package{
		Name:    "mlpipe-testpkg",
		Version: "1.0.0",
		Files: map[string][]byte{
			"mlpipe_testpkg/__init__.py": []byte("def answer():\n    return 42\n"),
			"mlpipe_testpkg/data.txt":    []byte("x,y\n"),
		},
	}
}

// readWheel returns the entries of a wheel, in order, with their contents.
func readWheel(t *testing.T, path string) ([]string, map[string]string) {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	files := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, f.Name)
		files[f.Name] = string(data)
	}
	return names, files
}

func TestWrite(t *testing.T) {
	p := testPackage()
	p.Requires = []string{"numpy>=1.20", `typing-extensions; python_version<"3.9"`}
	dir := t.TempDir()
	got, err := Write(filepath.Join(dir, "sub"), p)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "sub", "mlpipe_testpkg-1.0.0-py3-none-any.whl"); got != want {
		t.Errorf("Write path = %q, want %q", got, want)
	}
	names, files := readWheel(t, got)
	info := "mlpipe_testpkg-1.0.0.dist-info/"
	wantNames := []string{"mlpipe_testpkg/__init__.py", "mlpipe_testpkg/data.txt", info + "METADATA", info + "WHEEL", info + "RECORD"}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	wantMeta := "Metadata-Version: 2.1\nName: mlpipe-testpkg\nVersion: 1.0.0\n" +
		"Requires-Dist: numpy>=1.20\nRequires-Dist: typing-extensions; python_version<\"3.9\"\n"
	if diff := cmp.Diff(wantMeta, files[info+"METADATA"]); diff != "" {
		t.Errorf("METADATA (-want +got):\n%s", diff)
	}
	wantWheel := "Wheel-Version: 1.0\nGenerator: mlpipe-pywheel (1.0)\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
	if diff := cmp.Diff(wantWheel, files[info+"WHEEL"]); diff != "" {
		t.Errorf("WHEEL (-want +got):\n%s", diff)
	}

	rows, err := csv.NewReader(strings.NewReader(files[info+"RECORD"])).ReadAll()
	if err != nil {
		t.Fatalf("RECORD: %v", err)
	}
	var recorded []string
	for _, r := range rows {
		recorded = append(recorded, r[0])
		if r[0] == info+"RECORD" {
			if r[1] != "" || r[2] != "" {
				t.Errorf("RECORD's own row = %q, want empty hash and size", r)
			}
			continue
		}
		data := files[r[0]]
		if r[1] != recordHash([]byte(data)) || r[2] != strconv.Itoa(len(data)) {
			t.Errorf("RECORD row %q does not match content (hash %s, size %d)", r, recordHash([]byte(data)), len(data))
		}
		if !regexp.MustCompile(`^sha256=[A-Za-z0-9_-]{43}$`).MatchString(r[1]) {
			t.Errorf("RECORD hash %q is not urlsafe base64 without padding", r[1])
		}
	}
	if diff := cmp.Diff(wantNames, recorded); diff != "" {
		t.Errorf("RECORD paths (-want +got):\n%s", diff)
	}
}

func TestWriteDeterministic(t *testing.T) {
	a, err := Write(t.TempDir(), KFP("2.7.0"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Write(t.TempDir(), KFP("2.7.0"))
	if err != nil {
		t.Fatal(err)
	}
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if !bytes.Equal(da, db) {
		t.Error("two writes of the same package differ")
	}
	zr, err := zip.OpenReader(a)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		if !f.Modified.Equal(zipTime) {
			t.Errorf("%s: modified %v, want %v", f.Name, f.Modified, zipTime)
		}
	}
}

func TestWriteNames(t *testing.T) {
	for _, tc := range []struct{ name, version, file, norm string }{
		{"mlpipe-testpkg", "1.0.0", "mlpipe_testpkg-1.0.0-py3-none-any.whl", "mlpipe-testpkg"},
		{"Foo.Bar__baz", "2.0", "foo_bar_baz-2.0-py3-none-any.whl", "foo-bar-baz"},
		{"kfp", "2.7.0", "kfp-2.7.0-py3-none-any.whl", "kfp"},
		{"x", "1.0+local-1", "x-1.0+local_1-py3-none-any.whl", "x"},
	} {
		p := Package{Name: tc.name, Version: tc.version}
		if got := WheelFilename(p); got != tc.file {
			t.Errorf("WheelFilename(%q, %q) = %q, want %q", tc.name, tc.version, got, tc.file)
		}
		if got := NormalizeName(tc.name); got != tc.norm {
			t.Errorf("NormalizeName(%q) = %q, want %q", tc.name, got, tc.norm)
		}
	}
}

func TestWriteInvalid(t *testing.T) {
	files := func(name string) map[string][]byte { return map[string][]byte{name: []byte("x")} }
	for _, tc := range []struct {
		desc string
		p    Package
		want string
	}{
		{"empty name", Package{Version: "1"}, "invalid distribution name"},
		{"bad name", Package{Name: "-x", Version: "1"}, "invalid distribution name"},
		{"space in name", Package{Name: "a b", Version: "1"}, "invalid distribution name"},
		{"empty version", Package{Name: "a"}, "invalid version"},
		{"slash version", Package{Name: "a", Version: "1/2"}, "invalid version"},
		{"absolute path", Package{Name: "a", Version: "1", Files: files("/etc/x")}, "invalid file path"},
		{"dotdot path", Package{Name: "a", Version: "1", Files: files("../x")}, "invalid file path"},
		{"unclean path", Package{Name: "a", Version: "1", Files: files("a//x")}, "invalid file path"},
		{"backslash path", Package{Name: "a", Version: "1", Files: files(`a\x`)}, "invalid file path"},
		{"dist-info file", Package{Name: "a", Version: "1", Files: files("a-1.dist-info/METADATA")}, "generated"},
		{"multi-line requirement", Package{Name: "a", Version: "1", Requires: []string{"x\nName: y"}}, "invalid Requires-Dist"},
	} {
		dir := t.TempDir()
		_, err := Write(dir, tc.p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Write error = %v, want it to contain %q", tc.desc, err, tc.want)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%s: Write left files behind: %v", tc.desc, ents)
		}
	}
}

func TestKFPFiles(t *testing.T) {
	p := KFP("2.7.0")
	var names []string
	for n := range p.Files {
		names = append(names, n)
	}
	slices.Sort(names)
	want := []string{"kfp/__init__.py", "kfp/dsl/__init__.py", "kfp/dsl/executor.py", "kfp/dsl/executor_main.py"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("kfp files (-want +got):\n%s", diff)
	}
	if !strings.Contains(string(p.Files["kfp/__init__.py"]), "__version__ = '2.7.0'\n") {
		t.Errorf("kfp/__init__.py = %q, want __version__ = '2.7.0'", p.Files["kfp/__init__.py"])
	}
	if p.Name != "kfp" || p.Version != "2.7.0" {
		t.Errorf("KFP = %s %s", p.Name, p.Version)
	}
}

func TestWriteIndex(t *testing.T) {
	dir := t.TempDir()
	kfpWheel, err := Write(dir, KFP("2.7.0"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Write(dir, testPackage()); err != nil {
		t.Fatal(err)
	}
	other := testPackage()
	other.Version = "1.1.0"
	if _, err := Write(dir, other); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "simple", "stale"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteIndex(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "simple", "stale")); !os.IsNotExist(err) {
		t.Errorf("stale index entry survived WriteIndex: %v", err)
	}

	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	get := func(p string) string {
		t.Helper()
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", p, resp.Status)
		}
		return string(body)
	}
	hrefs := func(page string) []string {
		var out []string
		for _, m := range regexp.MustCompile(`href="([^"]*)"`).FindAllStringSubmatch(page, -1) {
			out = append(out, m[1])
		}
		return out
	}
	if diff := cmp.Diff([]string{"kfp/", "mlpipe-testpkg/"}, hrefs(get("/simple/"))); diff != "" {
		t.Errorf("/simple/ links (-want +got):\n%s", diff)
	}
	links := hrefs(get("/simple/mlpipe-testpkg/"))
	if len(links) != 2 || !strings.HasPrefix(links[0], "../../mlpipe_testpkg-1.0.0-py3-none-any.whl#sha256=") ||
		!strings.HasPrefix(links[1], "../../mlpipe_testpkg-1.1.0-py3-none-any.whl#sha256=") {
		t.Errorf("/simple/mlpipe-testpkg/ links = %q", links)
	}
	kfpLinks := hrefs(get("/simple/kfp/"))
	if len(kfpLinks) != 1 {
		t.Fatalf("/simple/kfp/ links = %q, want one", kfpLinks)
	}
	// Follow the relative link the way pip does and check the fragment's hash.
	file, frag, _ := strings.Cut(kfpLinks[0], "#sha256=")
	data := get("/simple/kfp/" + file)
	want, _ := os.ReadFile(kfpWheel)
	if data != string(want) {
		t.Error("wheel served through the index link differs from the file")
	}
	if sum := sha256.Sum256(want); frag != hex.EncodeToString(sum[:]) {
		t.Errorf("sha256 fragment = %q, want %x", frag, sum)
	}
}

func TestWriteIndexBadName(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nonsense.whl"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteIndex(dir); err == nil || !strings.Contains(err.Error(), "not a wheel file name") {
		t.Errorf("WriteIndex error = %v", err)
	}
}
