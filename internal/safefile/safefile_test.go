package safefile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestOpenRegular(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(file, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		want error // nil: opens
	}{
		{"file", nil},
		{"link", ErrSymlink},
		{"fifo", ErrNotRegular}, // and the open does not block
		{".", ErrNotRegular},
		{"missing", fs.ErrNotExist},
	} {
		f, err := OpenRegular(filepath.Join(dir, tc.name))
		if f != nil {
			f.Close()
		}
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("OpenRegular(%s) = %v, want %v", tc.name, err, tc.want)
		}
	}
}
