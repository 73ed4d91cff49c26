package main

import "github.com/mlpipe/mlpipe/runner"

// openObjectStore opens a MinIO/S3 artifact store (the MinIO issue).
func (a *app) openObjectStore(root string) (runner.ArtifactStore, error) {
	return nil, usagef("pipeline root %s: object stores are not available yet", root)
}
