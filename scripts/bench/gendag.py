#!/usr/bin/env python3
"""Writes the generated DAG the orchestration benchmarks run (dag.sh, ui.sh):

    scripts/bench/gendag.py N DIR

N trivial `true` tasks in layers of random widths (seeded: the same graph
every time), each depending on 1 to 3 tasks of the layer before, as
DIR/pipeline.yaml (with its component DIR/true.yaml) and as DIR/Makefile
(the same graph as make targets).
"""
import random, sys
n, work = int(sys.argv[1]), sys.argv[2]
rng = random.Random(42)
layers, left = [], n
while left > 0:
    w = min(left, rng.choice([1, 2, 4, 8, 16, 24]))
    layers.append(w)
    left -= w
tasks, prev = [], []
for w in layers:
    cur = []
    for _ in range(w):
        name = "t%d" % len(tasks)
        deps = sorted(set(rng.sample(prev, min(len(prev), rng.randint(1, 3))))) if prev else []
        tasks.append((name, deps))
        cur.append(name)
    prev = cur
with open(work + "/true.yaml", "w") as f:
    f.write("name: noop\ninputs: [{name: id, type: String}]\nimplementation: {container: {image: busybox, command: [true], args: [{inputValue: id}]}}\n")
with open(work + "/pipeline.yaml", "w") as f:
    f.write("name: dag%d\ntasks:\n" % n)
    for name, deps in tasks:
        after = ", after: [%s]" % ", ".join(deps) if deps else ""
        f.write("  %s: {component: true.yaml, inputs: {id: %s}%s}\n" % (name, name, after))
with open(work + "/Makefile", "w") as f:
    f.write(".PHONY: all %s\nall: %s\n" % (" ".join(t for t, _ in tasks), " ".join(t for t, _ in tasks)))
    for name, deps in tasks:
        f.write("%s: %s\n\t@true %s\n" % (name, " ".join(deps), name))
print("%d tasks in %d layers (widths %s)" % (len(tasks), len(layers), layers))
