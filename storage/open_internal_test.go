package storage

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// What the stores read of a step's outputs stays inside them: a link put
// where a file or a directory was listed is refused, not followed, and a
// FIFO neither blocks nor is read.
func TestSecurityOpenOutputs(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("host file"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "ok"), []byte("x"), 0o644))
	must(os.Symlink(secret, filepath.Join(dir, "file-link")))
	must(os.Symlink(outside, filepath.Join(dir, "dir-link")))
	must(os.Symlink("ok", filepath.Join(dir, "inside-link")))
	must(syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600))

	root, err := os.OpenRoot(dir)
	must(err)
	defer root.Close()
	for _, tc := range []struct {
		rel string
		ok  bool
	}{
		{"ok", true},
		{"file-link", false},
		{filepath.Join("dir-link", "secret"), false},
		{"fifo", false},
		{"inside-link", true}, // another file of the same directory
	} {
		f, err := openRegularIn(root, tc.rel)
		if (err == nil) != tc.ok {
			t.Errorf("openRegularIn(%s): %v, want ok=%v", tc.rel, err, tc.ok)
		}
		if f != nil {
			f.Close()
		}
	}
	for _, tc := range []struct {
		name string
		ok   bool
	}{{"ok", true}, {"file-link", false}, {"fifo", false}, {"inside-link", false}} {
		f, err := openRegular(filepath.Join(dir, tc.name))
		if (err == nil) != tc.ok {
			t.Errorf("openRegular(%s): %v, want ok=%v", tc.name, err, tc.ok)
		}
		if f != nil {
			f.Close()
		}
	}
	// The digest of a directory file goes through the same opener.
	if _, _, _, err := fileDigestCRC(t.Context(), func() (*os.File, error) { return openRegularIn(root, filepath.Join("dir-link", "secret")) }); err == nil {
		t.Error("fileDigestCRC read a file outside the directory through a link")
	}
}
