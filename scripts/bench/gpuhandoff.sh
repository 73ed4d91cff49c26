#!/usr/bin/env bash
# GPU hand-off: a chain of N (default 20) steps, each asking for 1 GPU of
# go-nvml's 8-GPU mock (MOCK=dgxa100; on a machine with GPUs, MOCK= uses
# them) and depending on the previous one; each step writes its own start
# and end time (ns). The hand-off is the next step's start minus the
# previous step's end (lease release -> acquire -> process start), counted
# when both ran on the same GPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${N:-20}"
MOCK="${MOCK-dgxa100}"
MLPIPE="$(realpath "${MLPIPE:-bin/mlpipe}")"
work="$(mktemp -d)"
[[ -n "${KEEP:-}" ]] && echo "work dir: $work" || trap 'rm -rf "$work"' EXIT
export MLPIPE_STATE_DIR="$work/state" XDG_CONFIG_HOME="$work/config" MLPIPE_GPU_LOCK_DIR="$work/gpus"
export MLPIPE_GPU_MOCK="$MOCK" HANDOFF_DIR="$work/times" MLPIPE_PROCESS_PASS_ENV=HANDOFF_DIR
mkdir -p "$work/times"
cat > "$work/step.yaml" <<'YAML'
name: step
inputs: [{name: id, type: String}]
implementation:
  container:
    image: x
    command: [sh, -c, 'echo "$(date +%s%N) $CUDA_VISIBLE_DEVICES" > "$HANDOFF_DIR/$0.start"; echo "$(date +%s%N)" > "$HANDOFF_DIR/$0.end"']
    args: [{inputValue: id}]
YAML
{
	echo "name: handoff"
	echo "tasks:"
	for ((i = 0; i < N; i++)); do
		after=""
		((i > 0)) && after=", after: [s$((i - 1))]"
		echo "  s$i: {component: step.yaml, inputs: {id: s$i}, resources: {gpu: 1}, cache: false$after}"
	done
} > "$work/pipeline.yaml"
"$MLPIPE" run "$work" --executor process >/dev/null 2>&1
python3 - "$work/times" "$N" <<'PY'
import sys, statistics
d, n = sys.argv[1], int(sys.argv[2])
gaps = []
for i in range(1, n):
    s_ns, s_gpu = open(f"{d}/s{i}.start").read().split()
    p_ns, p_gpu = open(f"{d}/s{i-1}.start").read().split()
    end = int(open(f"{d}/s{i-1}.end").read())
    if s_gpu == p_gpu:
        gaps.append((int(s_ns) - end) / 1e6)
gaps.sort()
print(f"{len(gaps)} hand-offs on the same GPU of {n-1}: median {statistics.median(gaps):.1f} ms, "
      f"p90 {gaps[int(0.9*(len(gaps)-1))]:.1f} ms, max {gaps[-1]:.1f} ms (goal < 50 ms on the mock)")
PY
