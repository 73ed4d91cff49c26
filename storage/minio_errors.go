package storage

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/mlpipe/mlpipe/contract"
)

// translate turns an error from minio-go into mlpipe's vocabulary at the
// boundary: ErrNotFound, ErrBucketNotFound, ErrAccessDenied, ErrUnreachable,
// context errors as they are, and anything else with the endpoint named.
// The secret key never appears in the result.
func (m *MinIO) translate(op, uri, bucket string, err error) error {
	if err == nil {
		return nil
	}
	var out error
	var resp minio.ErrorResponse
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		out = fmt.Errorf("%s %s: %w", op, uri, contextError(err))
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrDigestMismatch), errors.Is(err, ErrAccessDenied),
		errors.Is(err, ErrUnreachable), errors.Is(err, contract.ErrArtifactExists):
		out = err // already translated
	case errors.As(err, &resp):
		out = m.translateResponse(op, uri, bucket, resp)
	case isPlainHTTPAnswer(err):
		out = fmt.Errorf("%s %s: %s answers plain HTTP, not TLS (set minio.secure to false): %w", op, uri, m.endpoint, err)
	case isTLSError(err):
		out = fmt.Errorf("%s %s: TLS with %s failed (a plain-HTTP endpoint needs minio.secure=false; a private CA needs minio.ca_file): %w", op, uri, m.endpoint, err)
	case isNetworkError(err):
		out = fmt.Errorf("%s %s: %w: %s: %w", op, uri, ErrUnreachable, m.endpoint, err)
	default:
		out = fmt.Errorf("%s %s at %s: %w", op, uri, m.endpoint, err)
	}
	return m.redact(out)
}

func (m *MinIO) translateResponse(op, uri, bucket string, resp minio.ErrorResponse) error {
	if resp.BucketName != "" {
		bucket = resp.BucketName
	}
	switch resp.Code {
	case "NoSuchKey", "NoSuchUpload", "NoSuchVersion":
		return fmt.Errorf("%s %s: %w", op, uri, ErrNotFound)
	case "NoSuchBucket":
		return fmt.Errorf("%s %s: bucket %q at %s: %w (create it, or set minio.create_bucket)", op, uri, bucket, m.endpoint, ErrBucketNotFound)
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken",
		"InvalidSecurity", "AllAccessDisabled":
		return fmt.Errorf("%s %s: %w by %s for bucket %q (%s; check minio.access_key and minio.secret_key)",
			op, uri, ErrAccessDenied, m.endpoint, bucket, resp.Code)
	}
	switch resp.StatusCode {
	case 404:
		return fmt.Errorf("%s %s: %w", op, uri, ErrNotFound)
	case 401, 403:
		return fmt.Errorf("%s %s: %w by %s for bucket %q (HTTP %d; check minio.access_key and minio.secret_key)",
			op, uri, ErrAccessDenied, m.endpoint, bucket, resp.StatusCode)
	}
	return fmt.Errorf("%s %s: %s (bucket %q): %w", op, uri, m.endpoint, bucket, resp)
}

// contextError reduces an error that carries a context error to that
// error, dropping transport noise around it.
func contextError(err error) error {
	if errors.Is(err, context.Canceled) {
		return context.Canceled
	}
	return context.DeadlineExceeded
}

// isTLSError reports whether err is a TLS handshake or certificate
// failure, which retrying does not cure.
func isTLSError(err error) bool {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var he x509.HostnameError
	var rh tls.RecordHeaderError
	var ve *tls.CertificateVerificationError
	return errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &he) || errors.As(err, &rh) || errors.As(err, &ve)
}

// isPlainHTTPAnswer reports whether a TLS client met a plain-HTTP server.
func isPlainHTTPAnswer(err error) bool {
	return strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// isNetworkError reports whether err means the endpoint could not be
// reached or the connection broke.
func isNetworkError(err error) bool {
	var ue *url.Error
	var oe *net.OpError
	var de *net.DNSError
	return errors.As(err, &oe) || errors.As(err, &de) || errors.As(err, &ue) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ETIMEDOUT) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// transient reports whether an operation that failed with err may succeed
// when tried again: the connection broke or the server was busy, starting
// or failing internally, or the object changed while it was read.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrDigestMismatch) || errors.Is(err, ErrAccessDenied) || errors.Is(err, contract.ErrArtifactExists) || isTLSError(err) || isPlainHTTPAnswer(err) {
		return false
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		switch resp.Code {
		case "RequestTimeout", "SlowDown", "SlowDownWrite", "SlowDownRead", "InternalError", "ServiceUnavailable",
			"XMinioServerNotInitialized", "XMinioReadQuorum", "XMinioWriteQuorum", "PreconditionFailed",
			"RequestError", "Throttling", "IncompleteBody", "XAmzContentSHA256Mismatch", "BadDigest":
			return true
		}
		return resp.StatusCode >= 500 || resp.StatusCode == 429 || resp.StatusCode == 408
	}
	return isNetworkError(err)
}

// retry runs fn until it succeeds, fails for good, or the retries are
// spent, waiting with exponential backoff between attempts. fn's errors
// are translated.
//
// Each attempt gets a context of its own, which the transport cancels when
// one of the attempt's requests makes no progress for RequestTimeout (see
// minio_watchdog.go); such a stall is retried like a broken connection.
// Before each retry, the wait is reported to the Progress callback
// (Progress.Waiting), whatever the size of the transfer. After the last
// attempt, a stall fails as "no answer from <host> for <time>, <n>
// attempts", wrapping ErrUnreachable. The caller's context ends every
// attempt and every wait at once.
func (m *MinIO) retry(ctx context.Context, op, uri, bucket string, fn func(context.Context) error) error {
	wait := m.opts.RetryBackoff
	start := time.Now()
	for attempt := 1; ; attempt++ {
		a, actx := newAttempt(ctx)
		err := fn(actx)
		stall := a.stalled()
		a.cancel(nil)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w", op, uri, ctx.Err())
		}
		if stall == nil && !transient(err) {
			return m.translate(op, uri, bucket, err)
		}
		if attempt > m.opts.Retries {
			if stall != nil {
				attempts := fmt.Sprintf("%d attempts", attempt)
				if attempt == 1 {
					attempts = "1 attempt"
				}
				return m.redact(fmt.Errorf("%s %s: no answer from %s for %s, %s: %w",
					op, uri, stall.host, fmtSeconds(time.Since(start)), attempts, ErrUnreachable))
			}
			return m.translate(op, uri, bucket, err)
		}
		reason := m.redact(err).Error()
		if stall != nil {
			reason = stall.Error()
		}
		m.log.WarnContext(ctx, "object store operation failed, retrying", "op", op, "artifact", uri,
			"attempt", attempt, "backoff", wait, "err", reason)
		m.reportWait(Progress{Op: op, URI: uri, Waiting: true, Retry: attempt, Waited: time.Since(start),
			Endpoint: m.host, Reason: reason})
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%s %s: %w", op, uri, ctx.Err())
		case <-t.C:
		}
		wait = min(wait*2, m.opts.RetryMaxBackoff)
	}
}

// reportWait tells the Progress callback that an operation waits for the
// server.
func (m *MinIO) reportWait(p Progress) {
	if m.opts.Progress == nil {
		return
	}
	m.waitMu.Lock()
	defer m.waitMu.Unlock()
	m.opts.Progress(p)
}

// redact removes the secret key from an error's text, should any layer
// below have put it there.
func (m *MinIO) redact(err error) error {
	if err == nil || m.secret == "" || !strings.Contains(err.Error(), m.secret) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), m.secret, "[redacted]"), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
