package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"github.com/minio/minio-go/v7"
)

func TestParseObjectURI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		uri                 string
		scheme, bucket, key string
		wantErr             bool
	}{
		{uri: "minio://mlpipeline/v2/artifacts", scheme: "minio", bucket: "mlpipeline", key: "v2/artifacts"},
		{uri: "s3://b/k/", scheme: "s3", bucket: "b", key: "k"},
		{uri: "s3://bucket", scheme: "s3", bucket: "bucket"},
		{uri: "gs://b/k", wantErr: true},
		{uri: "/local/path", wantErr: true},
		{uri: "minio:///k", wantErr: true},
	}
	for _, tc := range tests {
		scheme, bucket, key, err := ParseObjectURI(tc.uri)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseObjectURI(%q) error = %v, want error %v", tc.uri, err, tc.wantErr)
			continue
		}
		if got, want := []string{scheme, bucket, key}, []string{tc.scheme, tc.bucket, tc.key}; !tc.wantErr && !cmp.Equal(got, want) {
			t.Errorf("ParseObjectURI(%q) = %q, want %q", tc.uri, got, want)
		}
	}
}

func TestManifestKey(t *testing.T) {
	t.Parallel()
	tests := []struct{ key, want string }{
		{"p/run/task/model", "p/run/task/.mlpipe-manifest.model.json"},
		{"top", ".mlpipe-manifest.top.json"},
	}
	for _, tc := range tests {
		got := manifestKey(tc.key)
		if got != tc.want {
			t.Errorf("manifestKey(%q) = %q, want %q", tc.key, got, tc.want)
		}
		if !isManifestKey(got) || isManifestKey(tc.key) {
			t.Errorf("isManifestKey is wrong for %q or %q", got, tc.key)
		}
		if strings.HasPrefix(got, tc.key) {
			t.Errorf("manifest %q lies under the artifact's prefix %q", got, tc.key)
		}
	}
}

func TestTransient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"short body", io.ErrUnexpectedEOF, true},
		{"server busy", minio.ErrorResponse{Code: "SlowDown", StatusCode: 503}, true},
		{"server starting", minio.ErrorResponse{Code: "XMinioServerNotInitialized", StatusCode: 503}, true},
		{"internal", minio.ErrorResponse{Code: "Whatever", StatusCode: 500}, true},
		{"object replaced", minio.ErrorResponse{Code: "PreconditionFailed", StatusCode: 412}, true},
		{"no such key", minio.ErrorResponse{Code: "NoSuchKey", StatusCode: 404}, false},
		{"denied", minio.ErrorResponse{Code: "AccessDenied", StatusCode: 403}, false},
		{"canceled", fmt.Errorf("put: %w", context.Canceled), false},
		{"digest", ErrDigestMismatch, false},
		{"local file", fmt.Errorf("open: %w", syscall.ENOENT), false},
		{"plain http", errors.New(`Get "https://h/": http: server gave HTTP response to HTTPS client`), false},
	}
	for _, tc := range tests {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("%s: transient(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestTranslateRedactsSecret(t *testing.T) {
	t.Parallel()
	m := &MinIO{secret: "s3cr3t-value", endpoint: "http://h:9000"}
	tests := []error{
		errors.New("signature computed with s3cr3t-value failed"),
		minio.ErrorResponse{Code: "Odd", Message: "echo s3cr3t-value", StatusCode: 400},
		&net.OpError{Op: "dial", Err: errors.New("s3cr3t-value")},
	}
	for _, err := range tests {
		got := m.translate("put", "minio://b/k", "b", err)
		if strings.Contains(got.Error(), "s3cr3t-value") {
			t.Errorf("translate(%v) = %q shows the secret", err, got)
		}
		if !strings.Contains(got.Error(), "h:9000") {
			t.Errorf("translate(%v) = %q does not name the endpoint", err, got)
		}
	}
	denied := m.translate("get", "minio://b/k", "b", minio.ErrorResponse{Code: "InvalidAccessKeyId", StatusCode: 403})
	if !errors.Is(denied, ErrAccessDenied) || !strings.Contains(denied.Error(), `"b"`) {
		t.Errorf("translate(InvalidAccessKeyId) = %v", denied)
	}
}

func TestNewMinIOOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     MinIOOptions
		endpoint string // want, or "" for an error
	}{
		{"default TLS", MinIOOptions{Endpoint: "s3.example.com"}, "https://s3.example.com"},
		{"plain", MinIOOptions{Endpoint: "127.0.0.1:9000", DisableTLS: true}, "http://127.0.0.1:9000"},
		{"URL decides", MinIOOptions{Endpoint: "http://minio:9000"}, "http://minio:9000"},
		{"no endpoint", MinIOOptions{}, ""},
		{"credentials in URL", MinIOOptions{Endpoint: "http://user:pw@minio:9000"}, ""},
		{"missing CA file", MinIOOptions{Endpoint: "minio:9000", CAFile: "/nonexistent/ca.pem"}, ""},
	}
	for _, tc := range tests {
		m, err := newMinIO("minio", "bucket", "prefix", tc.opts)
		if tc.endpoint == "" {
			if err == nil {
				t.Errorf("%s: newMinIO succeeded, want an error", tc.name)
			} else if strings.Contains(err.Error(), "pw@") {
				t.Errorf("%s: error %q shows URL credentials", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if m.Endpoint() != tc.endpoint {
			t.Errorf("%s: endpoint %q, want %q", tc.name, m.Endpoint(), tc.endpoint)
		}
		if got := m.RunRoot("pipe", "run"); got != "minio://bucket/prefix/pipe/run" {
			t.Errorf("%s: RunRoot = %q", tc.name, got)
		}
	}
}

func TestCopyHashed(t *testing.T) {
	t.Parallel()
	for _, size := range []int{0, 1, 1 << 20, 3<<20 + 17} {
		data := bytes.Repeat([]byte("abcdefg"), size/7+1)[:size]
		sum := sha256.Sum256(data)
		var out bytes.Buffer
		n, digest, err := copyHashed(&out, iotest.HalfReader(bytes.NewReader(data)))
		if err != nil || n != int64(size) || digest != DigestPrefix+hex.EncodeToString(sum[:]) || !bytes.Equal(out.Bytes(), data) {
			t.Errorf("copyHashed of %d bytes = %d, %s, %v", size, n, digest, err)
		}
	}
	boom := errors.New("boom")
	if _, _, err := copyHashed(io.Discard, iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Errorf("copyHashed of a failing reader: %v", err)
	}
}

func TestForEach(t *testing.T) {
	t.Parallel()
	var running, peak atomic.Int64
	err := forEach(t.Context(), 100, 5, func(ctx context.Context, i int) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		return nil
	})
	if err != nil || peak.Load() > 5 {
		t.Errorf("forEach = %v with %d at once, want nil and at most 5", err, peak.Load())
	}
	boom := errors.New("boom")
	var calls atomic.Int64
	err = forEach(t.Context(), 1000, 2, func(ctx context.Context, i int) error {
		calls.Add(1)
		if i == 3 {
			return boom
		}
		return ctx.Err()
	})
	if !errors.Is(err, boom) || calls.Load() == 1000 {
		t.Errorf("forEach with a failure = %v after %d calls; want boom, early", err, calls.Load())
	}
}

// An S3-compatible store that does not take the upload's checksum is
// recognised (the upload is then sent without it); other failures are not.
func TestChecksumRefused(t *testing.T) {
	for _, tc := range []struct {
		resp minio.ErrorResponse
		want bool
	}{
		{minio.ErrorResponse{StatusCode: 501, Code: "NotImplemented", Message: "A header you provided implies functionality that is not implemented"}, true},
		{minio.ErrorResponse{StatusCode: 400, Code: "InvalidArgument", Message: "x-amz-checksum-crc64nvme is not supported"}, true},
		{minio.ErrorResponse{StatusCode: 400, Code: "InvalidRequest", Message: "STREAMING-UNSIGNED-PAYLOAD-TRAILER: trailer not supported"}, true},
		{minio.ErrorResponse{StatusCode: 400, Code: "InvalidBucketName", Message: "bad name"}, false},
		{minio.ErrorResponse{StatusCode: 403, Code: "AccessDenied", Message: "Access Denied"}, false},
		{minio.ErrorResponse{StatusCode: 500, Code: "InternalError", Message: "checksum"}, false},
		// The bytes differ from the checksum sent (a file changed while it
		// was sent): an error of the upload, never a reason to send it
		// again without the checksum.
		{minio.ErrorResponse{StatusCode: 400, Code: "XAmzContentChecksumMismatch", Message: "The provided 'x-amz-checksum' header does not match what was computed."}, false},
		{minio.ErrorResponse{StatusCode: 400, Code: "BadDigest", Message: "The Content-MD5 or checksum value that you specified did not match what the server received."}, false},
		{minio.ErrorResponse{StatusCode: 400, Code: "InvalidRequest", Message: "checksum mismatch"}, false},
	} {
		if got := checksumRefused(tc.resp); got != tc.want {
			t.Errorf("checksumRefused(%d %s %q) = %v", tc.resp.StatusCode, tc.resp.Code, tc.resp.Message, got)
		}
	}
}

// A CRC vouches for an object's content only with a seal made under the
// store's key for that sha256 and that CRC, on a full-object checksum.
func TestCRCVouches(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	const digest = "sha256:" + "ab12"
	const crc = "AAAAAAAAAAE="
	good := func(edit func(*minio.ObjectInfo)) minio.ObjectInfo {
		oi := minio.ObjectInfo{
			ChecksumCRC64NVME: crc,
			ChecksumMode:      "FULL_OBJECT",
			UserMetadata: map[string]string{
				"X-Amz-Meta-Mlpipe-Sha256":    "ab12",
				"X-Amz-Meta-Mlpipe-Crc64nvme": crc,
				"X-Amz-Meta-Mlpipe-Seal":      seal(key, digest, crc),
			},
		}
		if edit != nil {
			edit(&oi)
		}
		return oi
	}
	for _, tc := range []struct {
		name string
		key  []byte
		oi   minio.ObjectInfo
		want string
		ok   bool
	}{
		{"sealed", key, good(nil), digest, true},
		{"sealed, nothing wanted", key, good(nil), "", true},
		{"no key", nil, good(nil), digest, false},
		{"another key", bytes.Repeat([]byte{8}, 32), good(nil), digest, false},
		{"other digest wanted", key, good(nil), "sha256:cd34", false},
		{"server checksum differs", key, good(func(o *minio.ObjectInfo) { o.ChecksumCRC64NVME = "AAAAAAAAAAI=" }), digest, false},
		{"composite checksum", key, good(func(o *minio.ObjectInfo) { o.ChecksumMode = "COMPOSITE" }), digest, false},
		{"no server checksum", key, good(func(o *minio.ObjectInfo) { o.ChecksumCRC64NVME = "" }), digest, false},
		{"no seal", key, good(func(o *minio.ObjectInfo) { delete(o.UserMetadata, "X-Amz-Meta-Mlpipe-Seal") }), digest, false},
		{"seal of another digest", key, good(func(o *minio.ObjectInfo) { o.UserMetadata["X-Amz-Meta-Mlpipe-Seal"] = seal(key, "sha256:cd34", crc) }), digest, false},
		{"no recorded digest", key, good(func(o *minio.ObjectInfo) { delete(o.UserMetadata, "X-Amz-Meta-Mlpipe-Sha256") }), digest, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &MinIO{opts: MinIOOptions{ChecksumKey: tc.key}}
			if got := m.crcVouches(tc.oi, tc.want); got != tc.ok {
				t.Errorf("crcVouches = %v, want %v", got, tc.ok)
			}
		})
	}
}
