#!/usr/bin/env bash
# Checks mlpipe on a machine with an NVIDIA GPU: prints `mlpipe gpus`, runs
# pipelines/gpu-smoke with the process executor (two steps that must each
# see only their own leased GPU and do ~2 s of GPU work) and prints the
# sampled utilisation. Builds mlpipe with `make build` unless MLPIPE points
# at a prebuilt binary; then it needs nothing but python3 with torch (or
# nvidia-smi). GPU_TEST=path/to/gpu.test also runs the real-NVML tests
# (built with: go test -c -tags gpu -o gpu.test ./gpu/).
set -uo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${MLPIPE:-}" ]]; then
	make build >&2 || exit 1
	MLPIPE=bin/mlpipe
fi
work="$(mktemp -d)"
export MLPIPE_STATE_DIR="$work/state" MLPIPE_GPU_LOCK_DIR="$work/locks" XDG_CONFIG_HOME="$work/config"
status=0
echo "== $(date -u +%FT%TZ) $(uname -srm)"
nvidia-smi --query-gpu=index,name,uuid,driver_version,memory.total --format=csv 2>&1 || true
echo "== mlpipe gpus"
"$MLPIPE" gpus || status=1
"$MLPIPE" gpus --output json > "$work/gpus.json" || status=1
echo "== mlpipe run pipelines/gpu-smoke --executor process"
"$MLPIPE" run pipelines/gpu-smoke --executor process -p "seconds=${STEP_SECONDS:-2}" || status=1
echo "== mlpipe runs show latest"
"$MLPIPE" runs show latest || status=1
echo "== sampled GPU use per step"
"$MLPIPE" runs show latest --output json > "$work/show.json" || status=1
python3 - "$work/show.json" <<'PY' || status=1
import json, sys
run = json.load(open(sys.argv[1]))
for t in run["tasks"]:
    u = t.get("gpu_usage") or {}
    print("%-8s %-10s %6d ms gpus=%s util mean=%.0f%% max=%.0f%% mem peak=%.1f GiB power mean=%.0f W energy=%.0f J samples=%d" % (
        t["name"], t["state"], t["duration_ms"], ",".join(t["gpus"]), u.get("util_mean", -1), u.get("util_max", -1),
        u.get("mem_peak_bytes", 0) / 2**30, u.get("power_mean_w", 0), u.get("energy_j", 0), u.get("samples", 0)))
PY
if [[ -n "${GPU_TEST:-}" ]]; then
	echo "== real NVML tests"
	"$GPU_TEST" -test.v -test.run 'TestReal' 2>&1 | tail -20 || status=1
fi
echo "== exit $status"
exit $status
