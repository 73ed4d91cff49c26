"""Helpers shared by mlpipe's example components (copied into each
component.py by `go test ./components -update`, so that every component stays a
single self-contained file).

They read KFP's executor input (the JSON of {{$}}) and write the executor
output file, where artifact metadata and output parameters go, exactly as
the KFP Python executor does, so the components behave the same under
mlpipe, kfp.local and a KFP cluster.
"""
# --- kfpio: begin ---
import json as _json
import os as _os


def artifact_path(artifact):
    """Local path of a RuntimeArtifact (docs/kfp-semantics.md, section 3.4): customPath wins,
    object-store URIs map to /minio, /s3, /gcs, anything else is a path."""
    custom = artifact.get("customPath") or artifact.get("custom_path")
    if custom:
        return custom
    uri = artifact.get("uri", "")
    for prefix, local in (("gs://", "/gcs/"), ("minio://", "/minio/"), ("s3://", "/s3/")):
        if uri.startswith(prefix):
            return local + uri[len(prefix):]
    if uri.startswith("file://"):
        return uri[len("file://"):]
    return uri


def load_executor_input(text):
    """Parse {{$}}; text may be the JSON itself or a path to it."""
    if text and not text.lstrip().startswith("{") and _os.path.exists(text):
        with open(text) as f:
            text = f.read()
    return _json.loads(text)


def input_artifacts(executor_input, name):
    return executor_input.get("inputs", {}).get("artifacts", {}).get(name, {}).get("artifacts", [])


def output_artifact(executor_input, name):
    arts = executor_input.get("outputs", {}).get("artifacts", {}).get(name, {}).get("artifacts", [])
    if not arts:
        raise SystemExit("component error: output artifact %r is not declared" % name)
    return arts[0]


def write_executor_output(executor_input, parameters=None, artifact_metadata=None, artifact_uris=None):
    """Write outputs.outputFile: output parameter values, and metadata
    merged into the declared output artifacts. A URI in artifact_uris
    points that output elsewhere in the artifact store: mlpipe stores what
    the component wrote at the artifact's path under that URI instead."""
    out = {"parameterValues": parameters or {}, "artifacts": {}}
    metadata, uris = artifact_metadata or {}, artifact_uris or {}
    for name in sorted(set(metadata) | set(uris)):
        art = dict(output_artifact(executor_input, name))
        art["metadata"] = dict(art.get("metadata") or {}, **metadata.get(name, {}))
        if name in uris:
            art["uri"] = uris[name]
        out["artifacts"][name] = {"artifacts": [art]}
    path = executor_input["outputs"]["outputFile"]
    _os.makedirs(_os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        _json.dump(out, f)


def fail(msg):
    """Exit with a clear message (no traceback) for invalid inputs."""
    import sys as _sys
    print("error: " + msg, file=_sys.stderr)
    _sys.exit(2)
# --- kfpio: end ---
