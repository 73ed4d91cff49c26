package storage_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/mlpipe/mlpipe/storage"
	"github.com/mlpipe/mlpipe/storage/storagetest"
)

// Transfers are verified by the S3 checksum mlpipe stores with the object
// (CRC64NVME, checked by the server on arrival and by minio-go while the
// download streams) instead of a second SHA-256; what it cannot vouch for
// is hashed. Whatever was damaged or replaced, the download fails clearly
// and leaves nothing at its destination.
func TestMinIOChecksumVerifiesTransfers(t *testing.T) {
	srv := storagetest.StartMinIO(t)
	s := openMinIO(t, srv, "minio://sums/root", func(o *storage.MinIOOptions) { o.Retries, o.ClientRetries = 1, 0 })
	c, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""), TrailingHeaders: true})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1<<20)
	_, _ = rand.Read(data)
	src := filepath.Join(t.TempDir(), "model.bin")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	put := func(name string) (string, string) {
		u := "minio://sums/root/" + name
		info, err := s.Put(t.Context(), u, src)
		if err != nil {
			t.Fatal(err)
		}
		return u, info.Digest
	}
	get := func(u, want string) error {
		dst := filepath.Join(t.TempDir(), "got")
		_, err := s.Get(t.Context(), u, dst, want)
		if err != nil {
			if left, _ := os.ReadDir(filepath.Dir(dst)); len(left) > 0 {
				t.Errorf("a failed Get of %s left %d entries", u, len(left))
			}
			return err
		}
		if b, _ := os.ReadFile(dst); !bytes.Equal(b, data) {
			t.Errorf("Get of %s succeeded with other content", u)
		}
		return nil
	}

	// The store's upload carries a full-object CRC64NVME that the server
	// checked and keeps, equal to the one mlpipe recorded.
	u, digest := put("a")
	oi, err := c.StatObject(t.Context(), "sums", "root/a", minio.StatObjectOptions{Checksum: true})
	if err != nil {
		t.Fatal(err)
	}
	if oi.ChecksumCRC64NVME == "" || oi.ChecksumMode != "FULL_OBJECT" || oi.UserMetadata["Mlpipe-Crc64nvme"] != oi.ChecksumCRC64NVME {
		t.Fatalf("stored checksum %q (%s), recorded %q", oi.ChecksumCRC64NVME, oi.ChecksumMode, oi.UserMetadata["Mlpipe-Crc64nvme"])
	}
	// Sealed under the store's key (an HMAC, not the key).
	if sealed := oi.UserMetadata["Mlpipe-Seal"]; len(sealed) != 64 || strings.Contains(sealed, string(srv.ChecksumKey)) {
		t.Fatalf("seal %q", sealed)
	}
	if err := get(u, digest); err != nil {
		t.Fatal(err)
	}
	// So do the files of a directory artifact.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "w.bin"), data[:4096], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "minio://sums/root/dir", dir); err != nil {
		t.Fatal(err)
	}
	if doi, err := c.StatObject(t.Context(), "sums", "root/dir/w.bin", minio.StatObjectOptions{Checksum: true}); err != nil ||
		doi.ChecksumCRC64NVME == "" || doi.UserMetadata["Mlpipe-Crc64nvme"] != doi.ChecksumCRC64NVME {
		t.Errorf("directory file: checksum %q, recorded %q (%v)", doi.ChecksumCRC64NVME, doi.UserMetadata["Mlpipe-Crc64nvme"], err)
	}
	if _, err := s.Get(t.Context(), "minio://sums/root/dir", filepath.Join(t.TempDir(), "d"), ""); err != nil {
		t.Errorf("Get of the directory: %v", err)
	}

	// Replaced with other bytes under the old metadata, with a checksum the
	// server accepts (of the new bytes): refused.
	evil := bytes.Repeat([]byte("X"), len(data))
	if _, err := c.PutObject(t.Context(), "sums", "root/a", bytes.NewReader(evil), int64(len(evil)), minio.PutObjectOptions{
		UserMetadata: map[string]string{"Mlpipe-Sha256": oi.UserMetadata["Mlpipe-Sha256"], "Mlpipe-Crc64nvme": oi.UserMetadata["Mlpipe-Crc64nvme"]},
		Checksum:     minio.ChecksumCRC64NVME,
	}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"", digest} {
		if err := get(u, want); !errors.Is(err, storage.ErrDigestMismatch) {
			t.Errorf("Get(want %q) of a replaced object: %v, want ErrDigestMismatch", want, err)
		}
	}
	// The same, by someone who also records the new bytes' checksum as
	// mlpipe's and copies the seal: the seal binds the checksum to the
	// sha256 under a key they do not hold, so the bytes are hashed.
	evilInfo, err := c.StatObject(t.Context(), "sums", "root/a", minio.StatObjectOptions{Checksum: true})
	if err != nil || evilInfo.ChecksumCRC64NVME == "" {
		t.Fatalf("replaced object: checksum %q, %v", evilInfo.ChecksumCRC64NVME, err)
	}
	if _, err := c.PutObject(t.Context(), "sums", "root/a", bytes.NewReader(evil), int64(len(evil)), minio.PutObjectOptions{
		UserMetadata: map[string]string{
			"Mlpipe-Sha256":    oi.UserMetadata["Mlpipe-Sha256"],
			"Mlpipe-Crc64nvme": evilInfo.ChecksumCRC64NVME,
			"Mlpipe-Seal":      oi.UserMetadata["Mlpipe-Seal"],
		},
		Checksum: minio.ChecksumCRC64NVME,
	}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"", digest} {
		if err := get(u, want); !errors.Is(err, storage.ErrDigestMismatch) {
			t.Errorf("Get(want %q) of a replaced object with forged checksum metadata: %v, want ErrDigestMismatch", want, err)
		}
	}

	// A store with another key (another user's state directory) or none
	// reads intact objects all the same, by hashing them.
	for name, key := range map[string][]byte{"another key": bytes.Repeat([]byte("k"), 32), "no key": nil} {
		other := openMinIO(t, srv, "minio://sums/root", func(o *storage.MinIOOptions) { o.ChecksumKey = key })
		u2, d2 := put("sealed-" + strings.ReplaceAll(name, " ", "-"))
		if _, err := other.Get(t.Context(), u2, filepath.Join(t.TempDir(), "x"), d2); err != nil {
			t.Errorf("%s: Get of an intact object: %v", name, err)
		}
	}
	if _, err := storage.OpenMinIO(t.Context(), "minio://sums/root", func() storage.MinIOOptions {
		o := srv.Options()
		o.ChecksumKey = []byte("short")
		return o
	}()); err == nil || strings.Contains(err.Error(), "short") {
		t.Errorf("a 5-byte checksum key: %v, want an error that does not quote it", err)
	}

	// An object an older mlpipe stored (a sha256, no checksum) is verified
	// by hashing: accepted when intact.
	if _, err := c.PutObject(t.Context(), "sums", "root/old", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
		UserMetadata: map[string]string{"Mlpipe-Sha256": strings.TrimPrefix(digest, "sha256:")},
	}); err != nil {
		t.Fatal(err)
	}
	if err := get("minio://sums/root/old", digest); err != nil {
		t.Errorf("an intact object without a checksum: %v", err)
	}

	// A byte flipped in the server's data directory.
	u, digest = put("b")
	var part string
	_ = filepath.WalkDir(filepath.Join(srv.DataDir(), "sums", "root", "b"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (d.Name() == "part.1" || (part == "" && d.Name() == "xl.meta")) {
			part = p
		}
		return nil
	})
	if part == "" {
		t.Fatal("the object is not in the server's data directory")
	}
	b, err := os.ReadFile(part)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(part, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := get(u, digest); err == nil {
		t.Error("Get of an object damaged on the server's disk succeeded")
	}
}
