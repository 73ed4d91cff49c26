package runner

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The second line of defence on its own: whatever name reaches the runner,
// the paths it builds stay under their root and are one-to-one.
func TestSecurityTaskRelDir(t *testing.T) {
	tests := []struct {
		path, want string
		ok         bool
	}{
		{"train", "train", true},
		{"for-loop-2[3]/train", "for-loop-2.3/train", true},
		{"outer[0][12]/x", "outer.0.12/x", true},
		{"../../../../victim", "", false},
		{"..", "", false},
		{"/etc", "", false},
		{"a/../../b", "", false},
		{"t.0", "", false},
		{"t[0", "", false},
		{"t[x]", "", false},
		{"t[]", "", false},
		{"t[0]x", "", false},
		{"a//b", "", false},
		{"", "", false},
	}
	for _, tc := range tests {
		got, err := taskRelDir(tc.path)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("taskRelDir(%q) = %q, %v; want %q, ok=%v", tc.path, got, err, tc.want, tc.ok)
		}
	}
	// No two task paths share a directory: a root task named like a
	// loop iteration, or like a sub-DAG's child, cannot be written.
	seen := map[string]string{}
	for _, p := range []string{"sub/s", "sub[0]/s", "sub", "s", "t[0]", "t[0][1]", "t[1]"} {
		d, err := taskRelDir(p)
		if err != nil {
			t.Fatal(err)
		}
		if other, dup := seen[d]; dup {
			t.Errorf("%q and %q share %q", p, other, d)
		}
		seen[d] = p
	}
}

func TestSecurityJoinUnder(t *testing.T) {
	root := t.TempDir()
	var got []string
	for _, rel := range []string{"a", "a/b", "..", "../x", "a/../../x", "/etc/passwd", ".", ""} {
		p, err := joinUnder(root, rel)
		if err == nil {
			r, _ := filepath.Rel(root, p)
			got = append(got, r)
		}
	}
	// An absolute rel is joined below root, never used as it is.
	if diff := cmp.Diff([]string{"a", "a/b", "etc/passwd"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, name := range []string{"../x", "a/b", "..", ".", "x.y"} {
		if _, err := namedPath(root, "param.", name); err == nil {
			t.Errorf("namedPath accepted %q", name)
		}
	}
}

// FuzzTaskRelDir: whatever a task path holds, the directory taskRelDir
// gives stays strictly below the run's directory.
func FuzzTaskRelDir(f *testing.F) {
	for _, s := range []string{"a", "a[0]/b", "../x", "a/../../b", "/abs", "t[0][1]", "a//b", "..", "x[../]"} {
		f.Add(s)
	}
	root := "/state/runs/r"
	f.Fuzz(func(t *testing.T, path string) {
		rel, err := taskRelDir(path)
		if err != nil {
			return
		}
		p, err := joinUnder(root, rel)
		if err != nil {
			t.Fatalf("taskRelDir(%q) = %q, which escapes: %v", path, rel, err)
		}
		if r, err := filepath.Rel(root, p); err != nil || r != filepath.FromSlash(rel) {
			t.Fatalf("taskRelDir(%q) = %q joins to %q", path, rel, p)
		}
	})
}
