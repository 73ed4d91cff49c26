package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// The checksum key is made once, private to its owner, and reused; a key
// file that is a link, writable by others or of the wrong size is refused.
func TestChecksumKeyFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "keys", "checksum.key")
	key, err := readOrMakeKey(p)
	if err != nil || len(key) != checksumKeySize {
		t.Fatalf("first use: %d bytes, %v", len(key), err)
	}
	for path, want := range map[string]os.FileMode{p: 0o600, filepath.Dir(p): 0o700} {
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v (%v)", path, st.Mode().Perm(), want, err)
		}
	}
	again, err := readOrMakeKey(p)
	if err != nil || !bytes.Equal(again, key) {
		t.Fatalf("second use: %x, %v; want the same key", again, err)
	}

	for _, tc := range []struct {
		name  string
		setup func(p string)
		msg   string
	}{
		{"writable by others", func(p string) { os.WriteFile(p, key, 0o600); os.Chmod(p, 0o666) }, "other users"},
		{"readable by others", func(p string) { os.WriteFile(p, key, 0o600); os.Chmod(p, 0o644) }, "other users"},
		{"a FIFO", func(p string) { syscall.Mkfifo(p, 0o600) }, "not a regular file"},
		{"short", func(p string) { os.WriteFile(p, key[:5], 0o600) }, "holds 5 bytes"},
		{"a link", func(p string) { os.WriteFile(p+".real", key, 0o600); os.Symlink(p+".real", p) }, "symbolic link"},
		{"a directory", func(p string) { os.Mkdir(p, 0o700) }, "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "checksum.key")
			tc.setup(p)
			got, err := readOrMakeKey(p)
			if err == nil || got != nil {
				t.Fatalf("readOrMakeKey = %x, %v; want an error", got, err)
			}
			if !strings.Contains(err.Error(), tc.msg) && !(tc.msg == "symbolic link" && strings.Contains(err.Error(), "too many levels")) {
				t.Errorf("error %q, want it to say %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), string(key)) {
				t.Errorf("error quotes the key")
			}
		})
	}
}

// Processes making the key at the same moment all get the one that was
// linked into place first, never a half-written one.
func TestChecksumKeyConcurrentFirstUse(t *testing.T) {
	p := filepath.Join(t.TempDir(), "keys", "checksum.key")
	const n = 16
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys[i], errs[i] = readOrMakeKey(p)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || !bytes.Equal(keys[i], keys[0]) {
			t.Errorf("caller %d: %x, %v; want the key of caller 0 (%x)", i, keys[i], errs[i], keys[0])
		}
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".checksum.key.*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
