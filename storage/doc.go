// Package storage keeps artifacts: the local directory store (the default)
// and the MinIO/S3 store, behind one interface (Store), with a conformance
// suite (storage/storagetest) that every store passes. Both implement the
// runner's ArtifactStore.
//
// The MinIO/S3 store keeps the layout of a KFP cluster,
// <prefix>/<pipeline>/<run>/<task>/<output>, a file artifact as one object
// and a directory artifact as one object per file under the artifact's key.
// Every object carries the sha256 of its content as user metadata
// (X-Amz-Meta-Mlpipe-Sha256); a directory artifact also has a manifest
// object beside it, written last, listing its files and tree digest.
// Downloads are verified against the digest the run history recorded, or
// the one stored with the object. Errors leave the package as ErrNotFound,
// ErrBucketNotFound, ErrAccessDenied, ErrUnreachable or ErrDigestMismatch,
// naming the endpoint and bucket and never the secret key.
//
// A server that stops answering cannot hang an operation: every HTTP
// request the MinIO store makes is cancelled when it makes no progress for
// MinIOOptions.RequestTimeout (default 30 s; progress is bytes moving, so
// long transfers are never cut for being long), which ends that attempt of
// the operation; the operation is tried again with backoff up to
// MinIOOptions.Retries times (default 4), each wait reported to the
// Progress callback ("waiting for minio://b/k (retry 3, 20 s)"), and then
// fails with "no answer from host:port for 158 s, 5 attempts", wrapping
// ErrUnreachable. The caller's context ends it at any moment. See
// MinIOOptions.RequestTimeout for the bound and minio_watchdog.go for how.
package storage
