"""model-registry: publishes a model under a versioned path of a registry
directory, <registry>/<name>/<version>/, with model.json and metadata.json
(framework, device, metrics, sha256 digest, source URI). Versions are v1,
v2, ... unless one is given; an existing version is never overwritten."""
import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import sys

# --- kfpio: begin ---
import json as _json
import os as _os


def artifact_path(artifact):
    """Local path of a RuntimeArtifact (KFP-IR.md 3.4): customPath wins,
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


def write_executor_output(executor_input, parameters=None, artifact_metadata=None):
    """Write outputs.outputFile: output parameter values and metadata
    merged into the declared output artifacts."""
    out = {"parameterValues": parameters or {}, "artifacts": {}}
    for name, md in (artifact_metadata or {}).items():
        art = dict(output_artifact(executor_input, name))
        art["metadata"] = dict(art.get("metadata") or {}, **md)
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


def main(argv):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--executor-input", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--registry", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--version", default="")
    a = p.parse_args(argv)
    ei = load_executor_input(a.executor_input)
    if "://" in a.registry:
        fail("registry must be a directory (an object store mounted at /minio/... or /s3/... works), not %s" % a.registry)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", a.name):
        fail("model name %r: use letters, digits, '.', '_' and '-'" % a.name)
    if a.version and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,49}", a.version):
        fail("version %r: use letters, digits, '.', '_' and '-'" % a.version)
    if not os.path.isfile(a.model):
        fail("model %s does not exist" % a.model)
    base = os.path.join(a.registry, a.name)
    os.makedirs(base, exist_ok=True)
    version = a.version
    if not version:
        taken = [int(m.group(1)) for d in os.listdir(base) for m in [re.fullmatch(r"v(\d+)", d)] if m]
        version = "v%d" % (max(taken, default=0) + 1)
    target = os.path.join(base, version)
    try:
        os.mkdir(target)  # atomic: two publishers cannot both take a version
    except FileExistsError:
        fail("version %s of model %s already exists at %s; refusing to overwrite it" % (version, a.name, target))
    with open(a.model, "rb") as f:
        digest = "sha256:" + hashlib.sha256(f.read()).hexdigest()
    shutil.copyfile(a.model, os.path.join(target, "model.json"))
    art = (input_artifacts(ei, "model") or [{}])[0]
    meta = {
        "name": a.name, "version": version, "digest": digest, "source": art.get("uri"),
        "metadata": art.get("metadata") or {},
        "run": os.environ.get("MLPIPE_RUN_ID", ""),
        "published_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    with open(os.path.join(target, "metadata.json"), "w") as f:
        json.dump(meta, f, indent=2)
    print("published %s %s at %s (%s)" % (a.name, version, target, digest))
    write_executor_output(ei, parameters={"version": version, "location": target})


if __name__ == "__main__":
    main(sys.argv[1:])
