#!/usr/bin/env bash
# mlpipe ui in a real headless Chromium (Debian's chromium, scripts/chromium.sh):
#   load    a run of N tasks (default 5,000, a layered DAG of `true` as dag.sh
#           makes, process executor): time until the run page shows all N nodes
#           with their states (best and median of R loads; goal < 2 s)
#   events  a run of E independent tasks (default 300, after one that sleeps 2 s) at --max-parallel P,
#           followed through the run page's server-sent events from its start:
#           the peak bytes in a 1-second window (goal < 1 MB/s)
#
#   N=5000 E=300 R=3 scripts/bench/ui.sh       (needs bin/mlpipe: make build)
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${N:-5000}"
E="${E:-300}"
P="${P:-32}"
R="${R:-3}"
MLPIPE="$(realpath "${MLPIPE:-bin/mlpipe}")"
work="$(mktemp -d)"
ui=""
cleanup() {
	if [[ -n "$ui" ]]; then kill -INT "$ui" 2>/dev/null || true; wait "$ui" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
export MLPIPE_STATE_DIR="$work/state" XDG_CONFIG_HOME="$work/config"
go build -o "$work/uipage" ./scripts/bench/uipage

mkdir -p "$work/dag" "$work/busy"
scripts/bench/gendag.py "$N" "$work/dag" >/dev/null
python3 - "$E" "$work" <<'PY'
import os, sys
e, work = int(sys.argv[1]), sys.argv[2]
open(os.path.join(work, "busy", "true.yaml"), "w").write("name: noop\ninputs: [{name: id, type: String}]\nimplementation: {container: {image: busybox, command: [true], args: [{inputValue: id}]}}\n")
open(os.path.join(work, "busy", "sleep.yaml"), "w").write("name: sleep\nimplementation: {container: {image: busybox, command: [sleep, '2']}}\n")
with open(os.path.join(work, "busy", "pipeline.yaml"), "w") as f:
    # A first task that sleeps 2 s, so that the events are followed from
    # before the E tasks start; then E tasks at once.
    f.write("name: busy%d\ntasks:\n  gate: {component: sleep.yaml, cache: false}\n" % e)
    for i in range(e):
        f.write("  t%d: {component: true.yaml, inputs: {id: t%d}, cache: false, after: [gate]}\n" % (i, i))
PY

"$MLPIPE" run "$work/dag" --executor process --no-cache >/dev/null 2>&1
run="$("$MLPIPE" runs show latest --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["run_id"])')"

"$MLPIPE" ui --listen 127.0.0.1:0 >"$work/ui.out" 2>&1 &
ui=$!
base=""
for _ in $(seq 1 100); do
	base="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$work/ui.out" | head -1 || true)"
	[[ -n "$base" ]] && break
	sleep 0.1
done
[[ -n "$base" ]] || { cat "$work/ui.out" >&2; exit 1; }

"$work/uipage" load "$base" "$run" "$N" "$R"

# The busy run: follow its events from its first line on.
"$MLPIPE" run "$work/busy" --executor process --max-parallel "$P" --output json >"$work/busy.json" 2>/dev/null &
busy=$!
brun=""
for _ in $(seq 1 200); do
	brun="$(head -1 "$work/busy.json" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin).get("run_id",""))' 2>/dev/null || true)"
	[[ -n "$brun" ]] && break
	sleep 0.02
done
[[ -n "$brun" ]] || { echo "the busy run printed no run_id" >&2; exit 1; }
"$work/uipage" events "$base" "$brun"
wait "$busy"
"$MLPIPE" runs show "$brun" | head -1
