package main

import (
	"context"
	"fmt"
	"time"

	"github.com/mlpipe/mlpipe/runner"
	"github.com/mlpipe/mlpipe/storage"
)

// openObjectStore opens the MinIO/S3 artifact store for a minio:// or
// s3:// pipeline root from the minio.* configuration: the bucket is the
// root's host part and the key prefix its path. Opening checks the
// endpoint, the credentials and the bucket (creating it when
// minio.create_bucket is set), so a wrong setting fails before any task
// runs.
func (a *app) openObjectStore(root string) (runner.ArtifactStore, error) {
	return a.openObjectStoreAs("pipeline root", root, a.cfg.Minio.CreateBucket)
}

// openObjectStoreAs opens the store for uri, named as what in errors,
// creating a missing bucket only when create is set.
func (a *app) openObjectStoreAs(what, root string, create bool) (*storage.MinIO, error) {
	if _, _, _, err := storage.ParseObjectURI(root); err != nil {
		return nil, usagef("%s: %v", what, err)
	}
	c := a.cfg.Minio
	if c.Endpoint == "" {
		return nil, usagef("%s %s needs an object store endpoint: set MLPIPE_MINIO_ENDPOINT (or minio.endpoint in the configuration file)", what, root)
	}
	opts := storage.MinIOOptions{
		Endpoint:       c.Endpoint,
		AccessKey:      c.AccessKey,
		SecretKey:      c.SecretKey,
		DisableTLS:     !c.Secure,
		CAFile:         c.CAFile,
		Region:         c.Region,
		PathStyle:      c.PathStyle,
		CreateBucket:   create,
		RequestTimeout: zeroIsOff(c.RequestTimeout),
		Retries:        int(zeroIsOff(time.Duration(c.Retries))),
		Logger:         a.log,
		Progress:       a.reportTransfer,
	}
	ctx := a.root.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	s, err := storage.OpenMinIO(ctx, root, opts)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, root, err)
	}
	return s, nil
}

// zeroIsOff maps a configured 0 ("none") to the store's negative "off"
// (its 0 means "the default").
func zeroIsOff(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
