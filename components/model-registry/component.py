"""model-registry: publishes a model under a versioned path of the
artifact store, <registry>/<name>/<version>/, where <registry> is
<pipeline root>/registry unless one is given. The version holds the model
(model.json, or model/ for a directory) and metadata.json (framework,
device, metrics, sha256 digest, source URI, run). The output artifact
registered_model points at that URI (KFP's executor output "uri"), so the
runner stores the version in the artifact store, local or MinIO/S3, and
mlpipe refuses to replace a version that exists. Outside mlpipe (a KFP
cluster, kfp.local) the version is also written at the URI's local path
(/minio/<bucket>/<key>, or the path itself), where KFP's launcher takes it;
the refusal to overwrite then only sees that path (in a cluster's pod it
does not see the bucket). The version is --version,
or v<run id> (v20261127-120102-5f86cc: creation time and a random suffix)."""
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


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,49}")


def registry_root(registry, pipeline_root):
    """The registry URI: the one given, else <pipeline root>/registry."""
    root = registry or pipeline_root
    if not root or "{{" in root:
        fail("no --registry given and the pipeline root is unknown (this backend does not resolve the pipeline_root placeholder)")
    if not (root.startswith("/") or re.match(r"(minio|s3|gs)://[^/]+", root)):
        fail("registry %r: use an absolute path or a minio://, s3:// or gs:// URI" % root)
    if ".." in root.split("/"):
        fail("registry %r must not contain '..'" % root)
    root = root.rstrip("/")
    return root if registry else root + "/registry"


def default_version(run, created):
    """v<run id>: mlpipe's run ids start with the creation time
    (v20261127-120102-5f86cc), so versions sort by age, and a retry or a
    resume of the run publishes the same version. Without a run id: the
    creation time, else now."""
    if run and "{{" not in run and VERSION.fullmatch("v" + run):
        return "v" + run
    try:
        t = datetime.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError):
        t = datetime.datetime.now(datetime.timezone.utc)
    return t.strftime("v%Y%m%d-%H%M%S")


def sha256_of(path):
    """sha256 of a file, or of a directory's files (relative path and
    content digest of each, in order)."""
    def file_digest(p):
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    if os.path.isfile(path):
        return "sha256:" + file_digest(path)
    h = hashlib.sha256()
    for d, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for name in sorted(files):
            p = os.path.join(d, name)
            h.update(("%s %s\n" % (os.path.relpath(p, path), file_digest(p))).encode())
    return "sha256:" + h.hexdigest()


def main(argv):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--executor-input", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--version", default="")
    p.add_argument("--registry", default="", help="registry URI (default: <pipeline root>/registry)")
    p.add_argument("--pipeline-root", default="")
    p.add_argument("--run", default="", help="run id (default version: v<run id>)")
    p.add_argument("--created", default="", help="creation time of the run (UTC, RFC 3339)")
    a = p.parse_args(argv)
    ei = load_executor_input(a.executor_input)
    if not NAME.fullmatch(a.name):
        fail("model name %r: use letters, digits, '.', '_' and '-'" % a.name)
    if a.version and not VERSION.fullmatch(a.version):
        fail("version %r: use letters, digits, '.', '_' and '-'" % a.version)
    if not os.path.exists(a.model):
        fail("model %s does not exist" % a.model)
    version = a.version or default_version(a.run, a.created)
    target = "%s/%s/%s" % (registry_root(a.registry, a.pipeline_root), a.name, version)
    # A registry on this machine's disk shows a taken version before any
    # work; mlpipe checks again when it stores the artifact (any store).
    if target.startswith("/") and os.path.exists(target):
        fail("version %s of model %s already exists at %s; refusing to overwrite it" % (version, a.name, target))

    out_dir = artifact_path(output_artifact(ei, "registered_model"))
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir) if os.path.isdir(out_dir) else os.remove(out_dir)
    os.makedirs(out_dir)
    if os.path.isdir(a.model):
        shutil.copytree(a.model, os.path.join(out_dir, "model"))
    else:
        shutil.copyfile(a.model, os.path.join(out_dir, "model.json"))
    digest = sha256_of(a.model)
    art = (input_artifacts(ei, "model") or [{}])[0]
    source_md = art.get("metadata") or {}
    meta = {
        "name": a.name, "version": version, "digest": digest, "source": art.get("uri"),
        "metadata": source_md, "run": "" if "{{" in a.run else a.run,
        "published_at": a.created if a.created and "{{" not in a.created else
        datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    with open(os.path.join(out_dir, "metadata.json"), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
    if "MLPIPE_RUN_ID" not in os.environ:
        # Not under mlpipe: KFP's launcher (and kfp.local) take the content
        # of a redirected artifact from the new URI's local path (docs/kfp-semantics.md,
        # section 3.4), so it goes there too. mlpipe stores the declared path.
        dest = artifact_path({"uri": target})
        if os.path.abspath(dest) != os.path.abspath(out_dir):
            if os.path.exists(dest):
                fail("version %s of model %s already exists at %s; refusing to overwrite it" % (version, a.name, dest))
            shutil.copytree(out_dir, dest)
    print("publishing %s %s at %s (%s)" % (a.name, version, target, digest))
    keep = {k: v for k, v in source_md.items() if k in ("framework", "device", "test_accuracy", "learning_rate")}
    write_executor_output(
        ei, parameters={"version": version, "location": target},
        artifact_metadata={"registered_model": dict(keep, name=a.name, version=version, digest=digest)},
        artifact_uris={"registered_model": target})


if __name__ == "__main__":
    main(sys.argv[1:])
