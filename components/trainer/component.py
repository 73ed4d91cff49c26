"""trainer: trains a logistic-regression classifier on a train Dataset.

It uses PyTorch on the GPU mlpipe leased to the step when torch and CUDA
are present (and use_gpu is set), PyTorch on the CPU when torch is
present, numpy when numpy is, and pure Python otherwise: the same model
and the same file format in every case. The Model artifact is JSON (weights,
bias, feature names) with metadata saying which framework and device
trained it; the training time and accuracy are output parameters."""
import argparse
import csv
import json
import math
import os
import random
import sys
import time

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


def load(path):
    if not os.path.exists(path):
        fail("train data %s does not exist" % path)
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header or header[-1] != "label":
            fail("train data %s: the last column must be 'label' (got %s)" % (path, header))
        xs, ys = [], []
        for row in reader:
            xs.append([float(v) for v in row[:-1]])
            ys.append(int(float(row[-1])))
    if len(xs) < 2:
        fail("train data %s has %d rows" % (path, len(xs)))
    return header[:-1], xs, ys


def train_torch(xs, ys, lr, epochs, device, seed):
    import torch
    torch.manual_seed(seed)
    X = torch.tensor(xs, dtype=torch.float32, device=device)
    y = torch.tensor(ys, dtype=torch.float32, device=device)
    w = torch.zeros(X.shape[1], device=device, requires_grad=True)
    b = torch.zeros(1, device=device, requires_grad=True)
    opt = torch.optim.SGD([w, b], lr=lr)
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(X @ w + b, y)
        loss.backward()
        opt.step()
    if device != "cpu":
        torch.cuda.synchronize()
    return w.detach().cpu().tolist(), float(b.detach().cpu()[0])


def train_numpy(xs, ys, lr, epochs):
    import numpy as np
    X, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    w, b = np.zeros(X.shape[1]), 0.0
    for _ in range(epochs):
        p = 1 / (1 + np.exp(-(X @ w + b)))
        g = p - y
        w -= lr * X.T @ g / len(y)
        b -= lr * g.mean()
    return w.tolist(), float(b)


def train_python(xs, ys, lr, epochs):
    n, d = len(xs), len(xs[0])
    w, b = [0.0] * d, 0.0
    for _ in range(epochs):
        gw, gb = [0.0] * d, 0.0
        for x, y in zip(xs, ys):
            z = b + sum(wi * xi for wi, xi in zip(w, x))
            p = 1 / (1 + math.exp(-max(-50.0, min(50.0, z))))
            e = p - y
            gb += e
            for i in range(d):
                gw[i] += e * x[i]
        w = [wi - lr * g / n for wi, g in zip(w, gw)]
        b -= lr * gb / n
    return w, b


def accuracy(w, b, xs, ys):
    ok = 0
    for x, y in zip(xs, ys):
        z = b + sum(wi * xi for wi, xi in zip(w, x))
        ok += int((z > 0) == (y == 1))
    return ok / len(ys)


def main(argv):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--executor-input", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--learning-rate", type=float, required=True)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--use-gpu", default="false")
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args(argv)
    ei = load_executor_input(a.executor_input)
    if not 0 < a.learning_rate <= 10:
        fail("learning_rate must be in (0, 10], not %g" % a.learning_rate)
    if not 1 <= a.epochs <= 100000:
        fail("epochs must be between 1 and 100000, not %d" % a.epochs)
    use_gpu = a.use_gpu.strip().lower() in ("true", "1", "yes")
    names, xs, ys = load(a.train)
    random.seed(a.seed)
    framework, device = "python", "cpu"
    start = time.perf_counter()
    try:
        import torch
        framework = "torch " + torch.__version__
        if use_gpu and torch.cuda.is_available():
            device = "cuda"
        elif use_gpu:
            print("warning: use_gpu is set but CUDA is not available; training on the CPU", file=sys.stderr)
        w, b = train_torch(xs, ys, a.learning_rate, a.epochs, device, a.seed)
        if device == "cuda":
            device = "cuda:" + torch.cuda.get_device_name(0)
    except ImportError:
        if use_gpu:
            print("warning: use_gpu is set but PyTorch is not installed; training on the CPU", file=sys.stderr)
        try:
            import numpy
            framework = "numpy " + numpy.__version__
            w, b = train_numpy(xs, ys, a.learning_rate, a.epochs)
        except ImportError:
            w, b = train_python(xs, ys, a.learning_rate, a.epochs)
    seconds = time.perf_counter() - start
    acc = accuracy(w, b, xs, ys)
    model = {"kind": "logistic-regression", "features": names, "weights": w, "bias": b}
    path = artifact_path(output_artifact(ei, "model"))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(model, f)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    print("trained with %s on %s (GPUs visible: %s) lr=%g epochs=%d in %.3f s: train accuracy %.3f" % (
        framework, device, visible or "none", a.learning_rate, a.epochs, seconds, acc))
    write_executor_output(ei,
        parameters={"training_seconds": seconds, "train_accuracy": acc},
        artifact_metadata={"model": {"framework": framework, "device": device, "learning_rate": a.learning_rate,
                                     "epochs": a.epochs, "train_accuracy": acc}})


if __name__ == "__main__":
    main(sys.argv[1:])
