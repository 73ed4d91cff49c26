//go:build docker

package main

import "testing"

// The dsl.get_uri pipelines (geturi_e2e_test.go) with the Docker executor
// on the python base image, with the local store (the task root mounted at
// its own path) and with MinIO (at KFP's /minio/<bucket>/<key> paths).

func TestDockerGetURIPipelines(t *testing.T) {
	c, _ := dockerCLI(t)
	pyWheels(t, c)
	getURIPipelines(t, c, readLocal(t))
}

func TestDockerGetURIPipelinesMinIO(t *testing.T) {
	c, _ := dockerCLI(t)
	pyWheels(t, c)
	srv := startMinIOFor(t, c)
	root := "minio://geturi/root"
	getURIPipelines(t, c, readMinIO(t, srv, root), "--pipeline-root", root)
}
