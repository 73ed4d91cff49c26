// Package kfp is mlpipe's client for the Kubeflow Pipelines API server, REST
// API v2beta1. It is the only package that speaks that API: it owns the wire
// format (snake_case bodies sent bare with omitempty, int64 values as
// strings, every response field optional), host handling as the Python
// kfp.Client does it (https:// when no scheme, a path prefix such as
// /pipeline kept), authentication (a bearer token file re-read before every
// request, a raw Cookie header, or a kubeflow-userid header), TLS, and the
// translation of every error body the API and the proxies in front of it
// answer with (google.rpc.Status, the legacy gateway shape, the upload
// handler's error_message, plain text, and HTML login pages or redirects,
// which become "authentication required" errors).
//
// It exposes mlpipe-shaped methods: Health, UploadPipeline,
// UploadPipelineVersion, PipelineByName, ListPipelineVersions,
// EnsureExperiment, CreateRun, GetRun, ListRuns, TerminateRun and WaitRun.
// It never depends on KFP's backend module; the wire contract it follows is
// described in docs/kfp-api.md (a "§N" in this package's comments is a
// section of that file). The fake server in package kfptest is built from
// the same contract for tests.
package kfp
