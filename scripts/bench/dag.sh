#!/usr/bin/env bash
# Orchestration overhead: a generated 300-task DAG of trivial `true` tasks,
# run by mlpipe (process executor, 2 tasks at a time) and by `make -j2` over
# the same graph; then a fully cached re-run. Prints the times and the ratio
# (goal: mlpipe <= 1.5x make; cached re-run < 1 s).
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${N:-300}"
J="${J:-2}"
MLPIPE="$(realpath "${MLPIPE:-bin/mlpipe}")"
work="$(mktemp -d)"
[[ -n "${KEEP:-}" ]] && echo "work dir: $work" || trap 'rm -rf "$work"' EXIT
export MLPIPE_STATE_DIR="$work/state" XDG_CONFIG_HOME="$work/config"
python3 - "$N" "$work" <<'PY'
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
PY
best() { # best of $REPEAT (default 5) wall-clock seconds of a command
	local b=""
	for ((i = 0; i < ${REPEAT:-5}; i++)); do
		local s e
		s=$(date +%s.%N)
		"$@" >/dev/null 2>&1
		e=$(date +%s.%N)
		local d
		d=$(echo "$e - $s" | bc -l)
		if [[ -z "$b" ]] || (($(echo "$d < $b" | bc -l))); then b=$d; fi
	done
	echo "$b"
}
make_t=$(best make -s -C "$work" -j"$J" all)
mlp_t=$(best "$MLPIPE" run "$work" --executor process --max-parallel "$J" --no-cache --output json)
"$MLPIPE" run "$work" --executor process --max-parallel "$J" --output json >/dev/null 2>&1
cached_t=$(best "$MLPIPE" run "$work" --executor process --max-parallel "$J" --output json)
printf 'make -j%s:            %.3f s\n' "$J" "$make_t"
printf 'mlpipe (no cache):   %.3f s\n' "$mlp_t"
printf 'ratio mlpipe/make:   %.2f (goal <= 1.5)\n' "$(echo "$mlp_t / $make_t" | bc -l)"
printf 'mlpipe fully cached: %.3f s (goal < 1 s)\n' "$cached_t"
