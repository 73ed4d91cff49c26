// Package docker is the executor that runs each task in its own Docker
// container, and the image builder behind `mlpipe build`.
//
// It speaks the Docker Engine API through github.com/docker/docker/client
// (DOCKER_HOST and the other DOCKER_* variables are honoured, and the API
// version is negotiated, so Engine 20.10 and later work).
//
// Images: an image that a component directory builds (Options.BuildContexts)
// is built from that directory, honouring .dockerignore, and tagged both
// with the component's image name and with a content-hash tag
// (mlpipe-<hash>), so an unchanged component is never rebuilt. Other images
// are used when present locally and pulled otherwise. The image ID is what
// ResolveImage returns: it enters the task's cache key, so a rebuilt image
// invalidates cached results.
//
// Containers follow Kubernetes semantics: a non-empty command replaces the
// image's ENTRYPOINT and the args replace its CMD; an empty command keeps
// the ENTRYPOINT. They run as the invoking user, never privileged, with the
// task's directories bind-mounted at the paths the runner chose, its CPU
// and memory limits, and its leased GPUs as a DeviceRequest by UUID
// (NVIDIA_VISIBLE_DEVICES=void when it has none). Every container carries
// mlpipe.* labels, including the PID and host of the mlpipe process that
// owns it, so Cleanup can remove containers left by a process that died.
package docker
