"""evaluator: scores one or several models (the fan-in of a training loop)
on a test Dataset. Writes a system.Metrics artifact (accuracy of every
model), a system.ClassificationMetrics artifact (confusion matrix and ROC
points of the best model), the best model as a Model artifact, and the best
accuracy as an output parameter."""
import argparse
import csv
import json
import math
import os
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


def load_test(path):
    if not os.path.exists(path):
        fail("test data %s does not exist" % path)
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header or header[-1] != "label":
            fail("test data %s: the last column must be 'label'" % path)
        xs, ys = [], []
        for row in reader:
            xs.append([float(v) for v in row[:-1]])
            ys.append(int(float(row[-1])))
    if not xs:
        fail("test data %s has no rows" % path)
    return header[:-1], xs, ys


def score(model, x):
    z = model["bias"] + sum(w * v for w, v in zip(model["weights"], x))
    return 1 / (1 + math.exp(-max(-50.0, min(50.0, z))))


def main(argv):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--executor-input", required=True)
    p.add_argument("--test", required=True)
    a = p.parse_args(argv)
    ei = load_executor_input(a.executor_input)
    names, xs, ys = load_test(a.test)
    arts = input_artifacts(ei, "models")
    if not arts:
        fail("no models to evaluate")
    results = []
    for i, art in enumerate(arts):
        path = artifact_path(art)
        try:
            with open(path) as f:
                model = json.load(f)
        except (OSError, ValueError) as e:
            fail("model %d (%s) cannot be read: %s" % (i, art.get("uri"), e))
        if model.get("features") != names:
            fail("model %d was trained on features %s, the test data has %s" % (i, model.get("features"), names))
        probs = [score(model, x) for x in xs]
        acc = sum(int((p > 0.5) == (y == 1)) for p, y in zip(probs, ys)) / len(ys)
        md = art.get("metadata") or {}
        results.append({"index": i, "path": path, "uri": art.get("uri"), "accuracy": acc, "probs": probs, "metadata": md})
        print("model %d (lr=%s, %s on %s): test accuracy %.4f" % (i, md.get("learning_rate", "?"), md.get("framework", "?"), md.get("device", "?"), acc))
    best = max(results, key=lambda r: (r["accuracy"], -r["index"]))
    # Confusion matrix and ROC points of the best model.
    tp = sum(1 for p, y in zip(best["probs"], ys) if p > 0.5 and y == 1)
    fp = sum(1 for p, y in zip(best["probs"], ys) if p > 0.5 and y == 0)
    tn = sum(1 for p, y in zip(best["probs"], ys) if p <= 0.5 and y == 0)
    fn = len(ys) - tp - fp - tn
    pos, neg = max(1, tp + fn), max(1, tn + fp)
    roc = []
    for k in range(11):
        t = k / 10
        tpr = sum(1 for p, y in zip(best["probs"], ys) if p >= t and y == 1) / pos
        fpr = sum(1 for p, y in zip(best["probs"], ys) if p >= t and y == 0) / neg
        roc.append({"confidenceThreshold": t, "recall": tpr, "falsePositiveRate": fpr})
    metrics = {"accuracy_model_%d" % r["index"]: r["accuracy"] for r in results}
    metrics["best_accuracy"] = best["accuracy"]
    cm = {"annotationSpecs": [{"displayName": "0"}, {"displayName": "1"}], "rows": [{"row": [tn, fp]}, {"row": [fn, tp]}]}
    for name, body in (("metrics", metrics), ("classification_metrics", {"confusionMatrix": cm, "confidenceMetrics": roc})):
        path = artifact_path(output_artifact(ei, name))
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as f:
            json.dump(body, f, indent=1)
    best_path = artifact_path(output_artifact(ei, "best_model"))
    os.makedirs(os.path.dirname(best_path) or ".", exist_ok=True)
    shutil.copyfile(best["path"], best_path)
    print("best: model %d with accuracy %.4f (confusion matrix tn=%d fp=%d fn=%d tp=%d)" % (best["index"], best["accuracy"], tn, fp, fn, tp))
    write_executor_output(ei,
        parameters={"best_accuracy": best["accuracy"], "best_index": best["index"]},
        artifact_metadata={
            "metrics": metrics,
            "classification_metrics": {"confusionMatrix": cm, "confidenceMetrics": roc},
            "best_model": dict(best["metadata"], test_accuracy=best["accuracy"], source=best["uri"]),
        })


if __name__ == "__main__":
    main(sys.argv[1:])
