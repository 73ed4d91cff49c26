"""data-preprocessor: makes (or reads) a tabular dataset, validates it and
splits it into train and test Datasets (CSV with a header and a 0/1 label
column). Outputs the row counts as parameters and as artifact metadata."""
import argparse
import csv
import math
import os
import random
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


def synthesize(rows, features, seed):
    """Two classes separated by a random hyperplane, with label noise."""
    rng = random.Random(seed)
    weights = [rng.uniform(-1, 1) for _ in range(features)]
    data = []
    for _ in range(rows):
        x = [rng.gauss(0, 1) for _ in range(features)]
        score = sum(w * v for w, v in zip(weights, x)) + rng.gauss(0, 0.3)
        data.append(x + [1 if score > 0 else 0])
    header = ["f%d" % i for i in range(features)] + ["label"]
    return header, data


def read_csv(path):
    if not os.path.exists(path):
        fail("source %s does not exist" % path)
    with open(path, newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            fail("source %s is empty" % path)
        if "label" not in header:
            fail("source %s has no 'label' column (columns: %s)" % (path, ", ".join(header)))
        data = []
        for lineno, row in enumerate(reader, start=2):
            if len(row) != len(header):
                fail("%s:%d: %d values, the header has %d" % (path, lineno, len(row), len(header)))
            try:
                values = [float(v) for v in row]
            except ValueError:
                fail("%s:%d: a value is not a number: %s" % (path, lineno, row))
            if any(math.isnan(v) or math.isinf(v) for v in values):
                fail("%s:%d: NaN or infinite value" % (path, lineno))
            label_index = header.index("label")
            if values[label_index] not in (0.0, 1.0):
                fail("%s:%d: label must be 0 or 1, not %s" % (path, lineno, row[label_index]))
            data.append(values)
    # Put the label last.
    li = header.index("label")
    header = [h for i, h in enumerate(header) if i != li] + ["label"]
    data = [[v for i, v in enumerate(r) if i != li] + [int(r[li])] for r in data]
    return header, data


def write_csv(path, header, rows):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow([("%.6g" % v) if isinstance(v, float) else v for v in r])


def main(argv):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--executor-input", required=True)
    p.add_argument("--rows", type=int, default=1000)
    p.add_argument("--features", type=int, default=8)
    p.add_argument("--source", default="")
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args(argv)
    ei = load_executor_input(a.executor_input)
    if not 0 < a.test_fraction < 1:
        fail("test_fraction must be between 0 and 1, not %g" % a.test_fraction)
    if a.source:
        header, data = read_csv(a.source)
    else:
        if a.rows < 10:
            fail("rows must be at least 10, not %d" % a.rows)
        if not 1 <= a.features <= 1000:
            fail("features must be between 1 and 1000, not %d" % a.features)
        header, data = synthesize(a.rows, a.features, a.seed)
    if len(data) < 10:
        fail("the dataset has %d rows; at least 10 are needed" % len(data))
    labels = {r[-1] for r in data}
    if labels != {0, 1}:
        fail("the dataset needs both labels 0 and 1, found %s" % sorted(labels))
    random.Random(a.seed).shuffle(data)
    n_test = max(1, int(round(len(data) * a.test_fraction)))
    test, train = data[:n_test], data[n_test:]
    train_art = output_artifact(ei, "train")
    test_art = output_artifact(ei, "test")
    write_csv(artifact_path(train_art), header, train)
    write_csv(artifact_path(test_art), header, test)
    positives = sum(r[-1] for r in data) / len(data)
    print("dataset: %d rows, %d features, %.0f%% positive; train %d, test %d" % (len(data), len(header) - 1, 100 * positives, len(train), len(test)))
    write_executor_output(ei,
        parameters={"train_rows": len(train), "test_rows": len(test)},
        artifact_metadata={
            "train": {"rows": len(train), "columns": header},
            "test": {"rows": len(test), "columns": header},
        })


if __name__ == "__main__":
    main(sys.argv[1:])
