package storage

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/mlpipe/mlpipe/contract"
)

// MinIOOptions configures a MinIO/S3 store. Only Endpoint is required.
type MinIOOptions struct {
	// Endpoint is host[:port], or a URL http://host[:port] or
	// https://host[:port] whose scheme decides TLS.
	Endpoint  string
	AccessKey string
	SecretKey string
	// DisableTLS talks plain HTTP; TLS is on by default.
	DisableTLS bool
	// CAFile is a PEM bundle of certificate authorities trusted besides
	// the system's.
	CAFile string
	Region string
	// PathStyle addresses buckets as https://host/bucket (MinIO and most
	// S3-compatible servers); otherwise minio-go picks (virtual-host style
	// for AWS).
	PathStyle bool
	// CreateBucket creates the root's bucket when it is missing.
	CreateBucket bool

	// PartSize is the multipart part size (default 16 MiB; minio-go grows
	// it for objects too large for 10,000 parts).
	PartSize uint64
	// PartThreads is how many parts of one file are sent at once (default 4).
	PartThreads int
	// Concurrency is how many files of a directory artifact are transferred
	// at once (default 16).
	Concurrency int
	// Retries is how many times an operation that failed transiently, or
	// whose server stopped answering (RequestTimeout), is tried again
	// (default 4, so 5 attempts; negative: never).
	Retries int
	// RetryBackoff is the wait before the first retry, doubled for each
	// further one up to RetryMaxBackoff (defaults 500ms and 8s).
	RetryBackoff    time.Duration
	RetryMaxBackoff time.Duration
	// ClientRetries is how many times minio-go retries one HTTP request
	// inside an attempt after an error it deems retryable (a refused or
	// broken connection, HTTP 5xx), with its own backoff of at most 1 s
	// (default 5; negative: never). A stalled request (RequestTimeout) is
	// not retried there: it ends the attempt.
	ClientRetries int
	// RequestTimeout is how long any request to the server (stat, put,
	// get, list, remove, each part of a multipart upload, bucket checks)
	// may make no progress: no response yet and no byte of the request
	// body taken for that long, or one read of the response body waiting
	// that long. A stalled request ends its attempt of the operation,
	// which is retried (Retries). Transfers are never cut for being long,
	// only for standing still. Default 30s; negative: no limit.
	//
	// When a server stops answering (it accepts connections, or keeps
	// them, but sends nothing), a call thus fails at most (Retries+1) ×
	// RequestTimeout plus the backoffs later (defaults: 5 × 30 s + 7.5 s),
	// reporting each wait through Progress; the caller's context ends it
	// at any time.
	RequestTimeout time.Duration

	// Progress, when set, is told about transfers of at least ProgressMin
	// bytes (default 32 MiB), at most five times a second per transfer,
	// and about every retry of any operation (Progress.Waiting). It may be
	// called from several goroutines, never at once for one transfer.
	Progress    func(Progress)
	ProgressMin int64
	// Logger receives retries as warnings; nil discards.
	Logger *slog.Logger

	// ChecksumKey binds an object's S3 checksum to its sha256: an upload
	// records HMAC-SHA256(ChecksumKey, sha256, CRC64NVME) with the object
	// (metaSeal), and a download takes the server's checksum, verified by
	// minio-go while streaming, as proof of the content only when that
	// record verifies under this key; what the seal does not vouch for is
	// hashed. Without a key every download is hashed. At least 32 bytes;
	// a secret (never logged).
	//
	// What this protects against: damage (a flipped bit on disk or on the
	// wire, a truncated or wrong object), objects of another mlpipe or
	// another user, and someone who replaces an object and edits its
	// metadata. What it does not: a CRC is not a cryptographic hash, so
	// someone with write access to the bucket can make other bytes of the
	// same size with the same CRC64NVME and keep the object's metadata.
	// For a bucket others can write to, leave the key out (minio.verify:
	// sha256): every download is then hashed with SHA-256.
	ChecksumKey []byte
}

// Defaults of MinIOOptions.
const (
	DefaultPartSize    = 16 << 20
	DefaultPartThreads = 4
	DefaultConcurrency = 16
	DefaultProgressMin = 32 << 20
	// DefaultRequestTimeout is the default of RequestTimeout.
	DefaultRequestTimeout = 30 * time.Second
)

// metaSHA256 is the user metadata key (header X-Amz-Meta-Mlpipe-Sha256)
// holding the hex sha256 of an object's content.
const metaSHA256 = "Mlpipe-Sha256"

// metaCRC64 is the user metadata holding the CRC64NVME (base64) of the
// content whose sha256 is metaSHA256: a download whose S3 checksum is this
// one needs no second hash (download).
const metaCRC64 = "Mlpipe-Crc64nvme"

// metaSeal is the user metadata holding the hex HMAC-SHA256, under the
// store's ChecksumKey, of the sha256 and the CRC64NVME recorded with the
// object (seal).
const metaSeal = "Mlpipe-Seal"

// seal is the HMAC that binds a CRC64NVME to the sha256 digest of the same
// content, under key.
func seal(key []byte, digest, crc string) string {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "mlpipe checksum seal v1\x00%s\x00%s", cleanDigest(digest), crc)
	return hex.EncodeToString(mac.Sum(nil))
}

// MinIO is an artifact store in a MinIO or S3 bucket, with the layout of a
// KFP cluster: <prefix>/<pipeline>/<run>/<task>/<output>. A file artifact
// is one object; a directory artifact is one object per file under
// <key>/ plus a manifest object beside it (see minio_dir.go).
//
// Integrity: Put hashes a file before sending it, so that the digest can
// travel as user metadata in the same request that creates the object
// (S3 fixes metadata when an upload starts; adding it afterwards means a
// server-side copy of the whole object, which measured slower than
// reading the file twice). Get hashes while streaming and compares with
// the wanted digest or the recorded one. Uploads are atomic on the server
// (single PUT, or multipart that is only visible once completed and is
// aborted on failure), so a failed Put leaves no object that looks
// complete.
type MinIO struct {
	client   *minio.Client
	core     minio.Core
	opts     MinIOOptions // with defaults applied and the secret cleared
	secret   string       // only for redaction
	scheme   string
	bucket   string
	prefix   string
	endpoint string // scheme://host:port, for messages
	host     string // host:port, for messages
	log      *slog.Logger
	waitMu   sync.Mutex // serialises wait reports
	// noChecksum is set once the server refused an upload's S3 checksum
	// (an S3-compatible store without CRC64NVME or trailers): later
	// uploads go without, and their downloads are hashed.
	noChecksum atomic.Bool
}

var _ contract.ArtifactStore = (*MinIO)(nil)
var _ Store = (*MinIO)(nil)

// OpenMinIO opens the store for root (minio://bucket/prefix or
// s3://bucket/prefix). It checks that the endpoint answers, the
// credentials are accepted and the bucket exists (creating it when
// opts.CreateBucket is set).
func OpenMinIO(ctx context.Context, root string, opts MinIOOptions) (*MinIO, error) {
	scheme, bucket, prefix, err := ParseObjectURI(root)
	if err != nil {
		return nil, err
	}
	m, err := newMinIO(scheme, bucket, prefix, opts)
	if err != nil {
		return nil, err
	}
	if err := m.ensureBucket(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

func newMinIO(scheme, bucket, prefix string, opts MinIOOptions) (*MinIO, error) {
	if opts.Endpoint == "" {
		return nil, errors.New("object store: no endpoint configured")
	}
	secure := !opts.DisableTLS
	host := opts.Endpoint
	if strings.Contains(host, "://") {
		u, err := url.Parse(host)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("object store endpoint %q: want host:port or http(s)://host:port", redactURL(host))
		}
		if u.User != nil {
			return nil, fmt.Errorf("object store endpoint %q: put credentials in the access and secret keys, not the URL", redactURL(host))
		}
		if strings.Trim(u.Path, "/") != "" {
			return nil, fmt.Errorf("object store endpoint %q: a path is not allowed", host)
		}
		secure, host = u.Scheme == "https", u.Host
	}
	applyDefaults(&opts)
	if n := len(opts.ChecksumKey); n > 0 && n < 32 {
		return nil, fmt.Errorf("object store: the checksum key has %d bytes, want at least 32", n)
	}
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, err
	}
	tr.MaxIdleConnsPerHost = max(tr.MaxIdleConnsPerHost, opts.Concurrency+opts.PartThreads)
	var rt http.RoundTripper = tr
	if opts.RequestTimeout > 0 {
		// The watchdog waits for the response headers too, with the
		// configured time instead of minio-go's minute.
		tr.ResponseHeaderTimeout = 0
		rt = &watchdogTransport{base: tr, idle: opts.RequestTimeout, host: host}
	}
	if secure && opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, fmt.Errorf("object store CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("object store CA file %s: no PEM certificates in it", opts.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	lookup := minio.BucketLookupAuto
	if opts.PathStyle {
		lookup = minio.BucketLookupPath
	}
	client, err := minio.New(host, &minio.Options{
		Creds:        credentials.NewStaticV4(opts.AccessKey, opts.SecretKey, ""),
		Secure:       secure,
		Transport:    rt,
		Region:       opts.Region,
		BucketLookup: lookup,
		MaxRetries:   max(opts.ClientRetries, 0) + 1,
		// Uploads send their CRC64NVME as a trailer, checked by the server.
		TrailingHeaders: true,
	})
	if err != nil {
		return nil, fmt.Errorf("object store endpoint %q: %w", host, err)
	}
	m := &MinIO{
		client:   client,
		core:     minio.Core{Client: client},
		secret:   opts.SecretKey,
		scheme:   scheme,
		bucket:   bucket,
		prefix:   prefix,
		endpoint: map[bool]string{true: "https://", false: "http://"}[secure] + host,
		host:     host,
		log:      opts.Logger,
	}
	opts.SecretKey = ""
	m.opts = opts
	return m, nil
}

func applyDefaults(o *MinIOOptions) {
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.PartThreads <= 0 {
		o.PartThreads = DefaultPartThreads
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	switch {
	case o.Retries == 0:
		o.Retries = 4
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = 500 * time.Millisecond
	}
	if o.RetryMaxBackoff <= 0 {
		o.RetryMaxBackoff = 8 * time.Second
	}
	if o.ClientRetries == 0 {
		o.ClientRetries = 5
	}
	switch {
	case o.RequestTimeout == 0:
		o.RequestTimeout = DefaultRequestTimeout
	case o.RequestTimeout < 0:
		o.RequestTimeout = 0
	}
	if o.ProgressMin <= 0 {
		o.ProgressMin = DefaultProgressMin
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// redactURL drops a URL's user information, for error messages.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		u.User = nil
		return u.String()
	}
	return s
}

// ensureBucket checks the root's bucket, creating it when asked to.
func (m *MinIO) ensureBucket(ctx context.Context) error {
	root := m.scheme + "://" + m.bucket
	var exists bool
	err := m.retry(ctx, "open", root, m.bucket, func(ctx context.Context) error {
		var err error
		exists, err = m.client.BucketExists(ctx, m.bucket)
		return err
	})
	if err != nil {
		return err
	}
	if exists {
		return nil
	}
	if !m.opts.CreateBucket {
		return fmt.Errorf("open %s: bucket %q at %s: %w (create it, or set minio.create_bucket)", root, m.bucket, m.endpoint, ErrBucketNotFound)
	}
	err = m.retry(ctx, "create bucket", root, m.bucket, func(ctx context.Context) error {
		err := m.client.MakeBucket(ctx, m.bucket, minio.MakeBucketOptions{Region: m.opts.Region})
		switch minio.ToErrorResponse(err).Code {
		case "BucketAlreadyOwnedByYou", "BucketAlreadyExists":
			return nil
		}
		return err
	})
	if err == nil {
		m.log.InfoContext(ctx, "created bucket", "bucket", m.bucket, "endpoint", m.endpoint)
	}
	return err
}

// Endpoint is the server's URL (scheme://host:port).
func (m *MinIO) Endpoint() string { return m.endpoint }

// Root implements contract.ArtifactStore: <scheme>://<bucket>/<prefix>.
func (m *MinIO) Root() string {
	return strings.TrimSuffix(m.scheme+"://"+m.bucket+"/"+m.prefix, "/")
}

// RunRoot implements contract.ArtifactStore: <scheme>://<bucket>/<prefix>/<pipeline>/<run>.
func (m *MinIO) RunRoot(pipeline, runID string) string {
	return m.scheme + "://" + m.bucket + "/" + path.Join(m.prefix, pipeline, runID)
}

// Remote implements contract.ArtifactStore: artifacts are staged in and out.
func (m *MinIO) Remote() bool { return true }

// locate splits an artifact URI; the key must not be empty.
func (m *MinIO) locate(uri string) (bucket, key string, err error) {
	_, bucket, key, err = ParseObjectURI(uri)
	if err != nil {
		return "", "", err
	}
	if key == "" {
		return "", "", fmt.Errorf("%s: names a bucket, not an artifact", uri)
	}
	return bucket, key, nil
}

// Put implements contract.ArtifactStore: it uploads the file or directory at
// localPath as the artifact at uri, replacing what was there.
func (m *MinIO) Put(ctx context.Context, uri, localPath string) (contract.ArtifactInfo, error) {
	bucket, key, err := m.locate(uri)
	if err != nil {
		return contract.ArtifactInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return contract.ArtifactInfo{}, fmt.Errorf("put %s: %w", uri, err)
	}
	st, err := os.Stat(localPath)
	if err != nil {
		return contract.ArtifactInfo{}, fmt.Errorf("put %s: %w", uri, err)
	}
	if st.IsDir() {
		return m.putDir(ctx, uri, bucket, key, localPath)
	}
	return m.putFile(ctx, uri, bucket, key, localPath)
}

func (m *MinIO) putFile(ctx context.Context, uri, bucket, key, localPath string) (contract.ArtifactInfo, error) {
	// A directory artifact stored here before goes first, manifest first.
	if err := m.removeDir(ctx, uri, bucket, key); err != nil {
		return contract.ArtifactInfo{}, err
	}
	open := func() (*os.File, error) { return openRegular(localPath) }
	digest, crc, size, err := fileDigestCRC(ctx, open)
	if err != nil {
		return contract.ArtifactInfo{}, fmt.Errorf("put %s: %w", uri, err)
	}
	prog := newProgress(m.opts.Progress, m.opts.ProgressMin, "put", uri, size)
	err = m.retry(ctx, "put", uri, bucket, func(ctx context.Context) error {
		prog.reset()
		return m.uploadFileOpts(ctx, bucket, key, localPath, open, size, m.putOptions(digest, crc, size, 0, prog))
	})
	if err != nil {
		return contract.ArtifactInfo{}, err
	}
	prog.finish()
	return contract.ArtifactInfo{Digest: digest, Size: size}, nil
}

// Create implements contract.ArtifactStore: Put for a URI where nothing may
// be replaced (ErrArtifactExists when something is stored at or under it).
// A file is uploaded with If-None-Match: *, so that the server refuses it
// when another writer stored the key in the meantime; for a directory
// artifact the check before the upload is all, and two processes creating
// the same directory at the same moment are not kept apart.
func (m *MinIO) Create(ctx context.Context, uri, localPath string) (contract.ArtifactInfo, error) {
	bucket, key, err := m.locate(uri)
	if err != nil {
		return contract.ArtifactInfo{}, err
	}
	exists, err := m.Exists(ctx, uri)
	if err != nil {
		return contract.ArtifactInfo{}, err
	}
	if exists {
		return contract.ArtifactInfo{}, fmt.Errorf("create %s: %w", uri, contract.ErrArtifactExists)
	}
	st, err := os.Stat(localPath)
	if err != nil {
		return contract.ArtifactInfo{}, fmt.Errorf("create %s: %w", uri, err)
	}
	if st.IsDir() {
		return m.putDir(ctx, uri, bucket, key, localPath)
	}
	open := func() (*os.File, error) { return openRegular(localPath) }
	digest, crc, size, err := fileDigestCRC(ctx, open)
	if err != nil {
		return contract.ArtifactInfo{}, fmt.Errorf("create %s: %w", uri, err)
	}
	prog := newProgress(m.opts.Progress, m.opts.ProgressMin, "put", uri, size)
	err = m.retry(ctx, "put", uri, bucket, func(ctx context.Context) error {
		prog.reset()
		opts := m.putOptions(digest, crc, size, 0, prog)
		opts.SetMatchETagExcept("*")
		err := m.uploadFileOpts(ctx, bucket, key, localPath, open, size, opts)
		if minio.ToErrorResponse(err).StatusCode == 412 {
			// Stored meanwhile: by an attempt of ours that the client
			// did not see succeed (the same content), or by someone else.
			if oi, serr := m.client.StatObject(ctx, bucket, key, minio.StatObjectOptions{}); serr == nil && recordedDigest(oi) == digest {
				return nil
			}
			return fmt.Errorf("create %s: %w", uri, contract.ErrArtifactExists)
		}
		return err
	})
	if err != nil {
		return contract.ArtifactInfo{}, err
	}
	prog.finish()
	return contract.ArtifactInfo{Digest: digest, Size: size}, nil
}

// uploadFileOpts sends one file with opts (putOptions: its digest, CRC and
// checksum). minio-go streams it with size known: one PUT up to PartSize,
// else a parallel multipart upload reading parts straight from the file.
// Each call opens the file anew (open: localPath, or the file inside a
// directory artifact's root), so a retried upload starts from its first
// byte.
//
// It returns as soon as ctx ends, even while minio-go still aborts a
// failed multipart upload (which it does for up to a minute, with a
// context of its own, against a server that may not answer): that
// finishes in the background, and the incomplete upload is invisible to
// readers either way.
func (m *MinIO) uploadFileOpts(ctx context.Context, bucket, key, localPath string, open opener, size int64, opts minio.PutObjectOptions) error {
	f, err := open()
	if err != nil {
		return err
	}
	if st, err := f.Stat(); err != nil {
		f.Close()
		return err
	} else if st.Size() != size {
		f.Close()
		return fmt.Errorf("%s changed while it was stored", localPath)
	}
	withChecksum := opts.Checksum.IsSet() || opts.UserMetadata[amzChecksumCRC64] != ""
	if withChecksum && m.noChecksum.Load() {
		withoutChecksum(&opts)
		withChecksum = false
	}
	done := make(chan error, 1)
	go func() {
		defer f.Close()
		_, err := m.client.PutObject(ctx, bucket, key, f, size, opts)
		if err != nil && withChecksum && checksumRefused(err) {
			m.noChecksum.Store(true)
			m.log.WarnContext(ctx, "the object store refuses S3 checksums: uploads go without, downloads are verified by hashing", "endpoint", m.endpoint, "err", err.Error())
			withoutChecksum(&opts)
			if _, serr := f.Seek(0, io.SeekStart); serr == nil {
				_, err = m.client.PutObject(ctx, bucket, key, f, size, opts)
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// withoutChecksum drops the S3 checksum and the CRC recorded for it.
func withoutChecksum(o *minio.PutObjectOptions) {
	o.Checksum = 0
	delete(o.UserMetadata, metaCRC64)
	delete(o.UserMetadata, metaSeal)
	delete(o.UserMetadata, amzChecksumCRC64)
}

// checksumRefused says whether an upload failed because the server does not
// take its S3 checksum or trailing headers (rather than for a transient or
// an access reason). A checksum the server computed differently (the
// file changed while it was sent, or bytes were damaged on the way) is an
// error of that upload, not a refusal.
func checksumRefused(err error) bool {
	r := minio.ToErrorResponse(err)
	msg := strings.ToLower(r.Code + " " + r.Message)
	switch {
	case r.Code == "BadDigest" || r.Code == "XAmzContentChecksumMismatch" || r.Code == "InvalidDigest" ||
		strings.Contains(msg, "mismatch") || strings.Contains(msg, "not match"):
		return false
	case r.StatusCode == 501 || r.Code == "NotImplemented":
		return true
	case r.StatusCode == 400 && (strings.Contains(msg, "checksum") || strings.Contains(msg, "trailer") || strings.Contains(msg, "x-amz-content-sha256")):
		return true
	}
	return false
}

// putOptions are the options of an upload: the sha256 (the artifact's
// identity) and, when given, the CRC64NVME in mlpipe's metadata, and the
// CRC64NVME as an S3 full-object checksum that minio-go computes while
// sending and the server checks on arrival and keeps with the object.
//
// A file up to singleMax (at least the part size) goes in one PUT; a
// larger one in parts sent in parallel.
func (m *MinIO) putOptions(digest, crc string, size, singleMax int64, prog *progressTracker) minio.PutObjectOptions {
	single := size <= max(singleMax, int64(m.opts.PartSize))
	o := minio.PutObjectOptions{
		UserMetadata: map[string]string{metaSHA256: cleanDigest(digest)},
		ContentType:  "application/octet-stream",
		PartSize:     m.opts.PartSize,
		NumThreads:   uint(m.opts.PartThreads),
		// The payload is covered by our own sha256; on plain HTTP this
		// spares minio-go's second sha256 of every byte for the request
		// signature (over TLS minio-go sends unsigned payloads anyway).
		DisableContentSha256: true,
		Progress:             prog.hook(),
	}
	if single {
		o.DisableMultipart = true
	}
	switch {
	case crc == "":
	case single:
		// One PUT: the checksum we computed goes as a signed header and the
		// server checks the body against it. (As a trailer, minio-go would
		// compute it again and, over plain HTTP, sign every chunk of the
		// body with SHA-256.)
		o.UserMetadata[amzChecksumCRC64] = crc
	default:
		// Multipart: minio-go computes the parts' checksums and the server
		// combines them into the full object's.
		o.Checksum = minio.ChecksumCRC64NVME
	}
	if crc != "" {
		o.UserMetadata[metaCRC64] = crc
		if len(m.opts.ChecksumKey) > 0 {
			o.UserMetadata[metaSeal] = seal(m.opts.ChecksumKey, digest, crc)
		}
	}
	return o
}

// amzChecksumCRC64 is the S3 header of a precomputed CRC64NVME.
const amzChecksumCRC64 = "x-amz-checksum-crc64nvme"

// Get implements contract.ArtifactStore: it downloads the artifact to
// localPath (or only verifies it when localPath is empty), checking its
// digest against want, or else against the digest recorded with it. A
// download that fails or does not verify leaves nothing at localPath.
func (m *MinIO) Get(ctx context.Context, uri, localPath, want string) (contract.ArtifactInfo, error) {
	bucket, key, err := m.locate(uri)
	if err != nil {
		return contract.ArtifactInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return contract.ArtifactInfo{}, fmt.Errorf("get %s: %w", uri, err)
	}
	_, err = m.statObject(ctx, "get", uri, bucket, key)
	switch {
	case err == nil:
		return m.getFile(ctx, uri, bucket, key, localPath, want)
	case !errors.Is(err, ErrNotFound) || errors.Is(err, ErrBucketNotFound):
		return contract.ArtifactInfo{}, err
	}
	return m.getDir(ctx, uri, bucket, key, localPath, want)
}

func (m *MinIO) getFile(ctx context.Context, uri, bucket, key, localPath, want string) (contract.ArtifactInfo, error) {
	dst := ""
	if localPath != "" {
		if err := os.MkdirAll(filepath.Dir(localPath), 0o755); err != nil {
			return contract.ArtifactInfo{}, err
		}
		dst = tempName(localPath)
		defer os.Remove(dst)
	}
	var info contract.ArtifactInfo
	var prog *progressTracker
	err := m.retry(ctx, "get", uri, bucket, func(ctx context.Context) error {
		var err error
		info, err = m.download(ctx, bucket, key, dst, want, func(size int64) *progressTracker {
			if prog == nil {
				prog = newProgress(m.opts.Progress, m.opts.ProgressMin, "get", uri, size)
			}
			prog.reset()
			return prog
		})
		return err
	})
	if err != nil {
		return contract.ArtifactInfo{}, withURI("get", uri, err)
	}
	if err := moveIntoPlace(dst, localPath); err != nil {
		return contract.ArtifactInfo{}, err
	}
	prog.finish()
	return info, nil
}

// download streams one object into the file dst (nothing when dst is
// empty) while hashing it, and checks the digest against want, else
// against the object's recorded digest. dst is removed on failure.
func (m *MinIO) download(ctx context.Context, bucket, key, dst, want string, progress func(size int64) *progressTracker) (contract.ArtifactInfo, error) {
	// With Checksum, the server returns the object's S3 checksum and
	// minio-go verifies the bytes against it as they stream (an error at
	// the end when they differ).
	body, oi, _, err := m.core.GetObject(ctx, bucket, key, minio.GetObjectOptions{Checksum: true})
	if err != nil {
		return contract.ArtifactInfo{}, err
	}
	defer body.Close()
	var w io.Writer = io.Discard
	if dst != "" {
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return contract.ArtifactInfo{}, err
		}
		defer f.Close()
		w = f
	}
	var prog *progressTracker
	if progress != nil {
		prog = progress(oi.Size)
	}
	var n int64
	var got string
	switch {
	case m.crcVouches(oi, want):
		// The server's checksum is the one recorded with the sha256, and
		// minio-go checks it while streaming: no second hash.
		buf := getBuffer()
		n, err = io.CopyBuffer(onlyWriter{w}, prog.reader(body), *buf)
		putBuffer(buf)
		got = recordedDigest(oi)
		if err != nil && strings.Contains(err.Error(), "checksum mismatch") {
			err = fmt.Errorf("%w: the content does not match the CRC64NVME checksum stored with it (%v)", ErrDigestMismatch, err)
		}
	case oi.Size >= copyHashedMin:
		n, got, err = copyHashed(w, prog.reader(body))
	default:
		hr := newHashingReader(prog.reader(body))
		buf := getBuffer()
		n, err = io.CopyBuffer(onlyWriter{w}, hr, *buf)
		putBuffer(buf)
		got = hr.digest()
	}
	if err == nil && n != oi.Size {
		err = fmt.Errorf("got %d of %d bytes: %w", n, oi.Size, io.ErrUnexpectedEOF)
	}
	if err == nil {
		if c, ok := w.(io.Closer); ok {
			err = c.Close()
		}
	}
	if err != nil {
		if dst != "" {
			os.Remove(dst)
		}
		return contract.ArtifactInfo{}, err
	}
	recorded := recordedDigest(oi)
	if want == "" {
		want = recorded
	}
	if want != "" && got != want {
		if dst != "" {
			os.Remove(dst)
		}
		return contract.ArtifactInfo{}, fmt.Errorf("%w (recorded %s, found %s)", ErrDigestMismatch, want, got)
	}
	return contract.ArtifactInfo{Digest: got, Size: n}, nil
}

// crcVouches says whether an object's S3 checksum proves its content is
// the one wanted: a full-object CRC64NVME whose seal, under this store's
// ChecksumKey, binds it to the sha256 recorded with the object, and that
// sha256 is the one wanted. Objects uploaded otherwise (an older mlpipe,
// another key, or replaced by someone who kept or forged the metadata)
// are verified by hashing them.
func (m *MinIO) crcVouches(oi minio.ObjectInfo, want string) bool {
	key := m.opts.ChecksumKey
	recorded := recordedDigest(oi)
	if len(key) == 0 || recorded == "" || (want != "" && want != recorded) {
		return false
	}
	crc := oi.ChecksumCRC64NVME
	if crc == "" || !strings.EqualFold(oi.ChecksumMode, "FULL_OBJECT") {
		return false
	}
	return hmac.Equal([]byte(recordedMeta(oi, metaSeal)), []byte(seal(key, recorded, crc)))
}

// copyHashedMin is the size from which downloads hash in a goroutine of
// their own.
const copyHashedMin = 4 << 20

// onlyWriter hides a writer's ReadFrom, so that io.CopyBuffer uses the
// large buffer.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

// recordedDigest is the digest stored with an object, or "".
func recordedDigest(oi minio.ObjectInfo) string {
	if v := recordedMeta(oi, metaSHA256); v != "" {
		return DigestPrefix + v
	}
	return ""
}

// recordedMeta is a user metadata value of mlpipe's, or "".
func recordedMeta(oi minio.ObjectInfo, name string) string {
	for k, v := range oi.UserMetadata {
		if strings.EqualFold(k, name) || strings.EqualFold(k, "X-Amz-Meta-"+name) {
			return v
		}
	}
	return oi.Metadata.Get("X-Amz-Meta-" + name)
}

// withURI prefixes an untranslated error with the operation.
func withURI(op, uri string, err error) error {
	if strings.HasPrefix(err.Error(), op+" ") {
		return err
	}
	return fmt.Errorf("%s %s: %w", op, uri, err)
}

// Exists implements contract.ArtifactStore: an object at uri's key, the
// manifest of a directory artifact there (an empty directory has nothing
// else), or any object under key/ (a directory artifact, or a prefix of
// others).
func (m *MinIO) Exists(ctx context.Context, uri string) (bool, error) {
	bucket, key, err := m.locate(uri)
	if err != nil {
		return false, err
	}
	for _, k := range []string{key, manifestKey(key)} {
		_, err = m.statObject(ctx, "stat", uri, bucket, k)
		switch {
		case err == nil:
			return true, nil
		case !errors.Is(err, ErrNotFound) || errors.Is(err, ErrBucketNotFound):
			return false, err
		}
	}
	found := false
	err = m.retry(ctx, "list", uri, bucket, func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		for oi := range m.client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: key + "/", Recursive: true, MaxKeys: 1}) {
			if oi.Err != nil {
				return oi.Err
			}
			found = true
			return nil
		}
		return nil
	})
	return found, err
}

// Digest digests the local file or directory at p as the store digests
// what it uploads.
func (m *MinIO) Digest(ctx context.Context, p string) (contract.ArtifactInfo, error) {
	return digestPath(ctx, p)
}

// Stat implements contract.ArtifactStore: the size and recorded digest of a
// file artifact, or of a directory artifact as its manifest records them.
// A directory that has no manifest (an interrupted upload, or one written
// by other tools) is ErrNotFound.
func (m *MinIO) Stat(ctx context.Context, uri string) (contract.ArtifactInfo, error) {
	bucket, key, err := m.locate(uri)
	if err != nil {
		return contract.ArtifactInfo{}, err
	}
	oi, err := m.statObject(ctx, "stat", uri, bucket, key)
	if err == nil {
		return contract.ArtifactInfo{Size: oi.Size, Digest: recordedDigest(oi)}, nil
	}
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrBucketNotFound) {
		return contract.ArtifactInfo{}, err
	}
	man, err := m.readManifest(ctx, "stat", uri, bucket, key)
	if err != nil {
		return contract.ArtifactInfo{}, err
	}
	return contract.ArtifactInfo{Size: man.Size, Digest: man.Digest, Dir: true}, nil
}

// statObject is a HEAD request with retries.
func (m *MinIO) statObject(ctx context.Context, op, uri, bucket, key string) (minio.ObjectInfo, error) {
	var oi minio.ObjectInfo
	err := m.retry(ctx, op, uri, bucket, func(ctx context.Context) error {
		var err error
		oi, err = m.client.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
		return err
	})
	return oi, err
}
