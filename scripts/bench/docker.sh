#!/usr/bin/env bash
# Per-step overhead of the Docker executor: N independent steps that run
# `true` in busybox:1.36, run by mlpipe (--executor docker, no cache) and by the
# Docker CLI (`docker run --rm busybox:1.36 true`, N times), serially and 4 at a
# time, R rounds alternating which goes first. Prints the best and median wall
# times, per step, and the ratio of the medians (goal: mlpipe <= 1.1x the CLI;
# <= 1.05x for the serial chain under load), then where mlpipe's steps spent
# their time (the phases its history records).
#
# LOAD=K runs K busy loops (one per core: LOAD=$(nproc)) for the whole
# measurement, so that both sides run on a loaded machine.
#
#   N=20 R=3 scripts/bench/docker.sh        (needs bin/mlpipe: make build)
#   N=20 R=5 LOAD=2 scripts/bench/docker.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${N:-20}"
R="${R:-3}"
LOAD="${LOAD:-0}"
IMAGE="${IMAGE:-busybox:1.36}"
MLPIPE="$(realpath "${MLPIPE:-bin/mlpipe}")"
scripts/base-images.sh >/dev/null 2>&1 || scripts/base-images.sh
work="$(mktemp -d)"
hogs=()
cleanup() {
	((${#hogs[@]})) && kill "${hogs[@]}" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
export MLPIPE_STATE_DIR="$work/state" XDG_CONFIG_HOME="$work/config"

{
	printf 'name: true\ninputs: [{name: id, type: String}]\n'
	printf 'implementation: {container: {image: %s, command: [true], args: [{inputValue: id}]}}\n' "$IMAGE"
} >"$work/true.yaml"
{
	printf 'name: docker-steps\ntasks:\n'
	for i in $(seq 1 "$N"); do printf '  t%d: {component: true.yaml, inputs: {id: t%d}}\n' "$i" "$i"; done
} >"$work/pipeline.yaml"

cli_serial() { for i in $(seq 1 "$N"); do docker run --rm "$IMAGE" true "t$i"; done; }
cli_parallel() { seq 1 "$N" | xargs -P4 -I{} docker run --rm "$IMAGE" true "t{}"; }
mlp() { "$MLPIPE" run "$work" --executor docker --max-parallel "$1" --no-cache --output json; }

timed() { # wall-clock seconds of a command
	local s e
	s=$(date +%s.%N)
	"$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; "$@" >&2; exit 1; }
	e=$(date +%s.%N)
	echo "$e - $s" | bc -l
}
stat() { # best and median of the arguments
	printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {m = (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "%s %s", v[1], m}'
}

mlp 1 >/dev/null 2>&1 # warm: the image is resolved, the state directory exists
docker run --rm "$IMAGE" true
for _ in $(seq 1 "$LOAD"); do
	sh -c 'while :; do :; done' &
	hogs+=($!)
done
sleep 1
measure() { # label, CLI function, mlpipe parallelism
	local cli=() ml=() r
	for r in $(seq 1 "$R"); do
		if ((r % 2)); then
			cli+=("$(timed "$2")")
			ml+=("$(timed mlp "$3")")
		else
			ml+=("$(timed mlp "$3")")
			cli+=("$(timed "$2")")
		fi
	done
	read -r cb cm <<<"$(stat "${cli[@]}")"
	read -r mb mm <<<"$(stat "${ml[@]}")"
	printf '%-9s docker CLI best %6.2f s, median %6.2f s (%4.0f ms/step) | mlpipe best %6.2f s, median %6.2f s (%4.0f ms/step) | ratio of medians %.3f, of bests %.3f\n' \
		"$1" "$cb" "$cm" "$(echo "$cm * 1000 / $N" | bc -l)" "$mb" "$mm" "$(echo "$mm * 1000 / $N" | bc -l)" "$(echo "$mm / $cm" | bc -l)" "$(echo "$mb / $cb" | bc -l)"
	echo "          rounds: CLI ${cli[*]} | mlpipe ${ml[*]}"
	# Where mlpipe's steps spent their time, in the last run.
	"$MLPIPE" runs show "$("$MLPIPE" runs ls --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["run_id"])')" --output json |
		python3 -c '
import json, sys
d = json.load(sys.stdin)
tot, n = {}, 0
for t in d.get("tasks", []):
    ph = t.get("phases_ms") or {}
    if not ph:
        continue
    n += 1
    for k, v in ph.items():
        tot[k] = tot.get(k, 0) + v
print("          mlpipe phases, mean ms per step over %d steps: " % n + ", ".join("%s %.0f" % (k, v / n) for k, v in sorted(tot.items(), key=lambda kv: -kv[1])))
'
}
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg), $LOAD busy loops; $N steps of '$IMAGE true', $R rounds alternating"
measure serial cli_serial 1
measure "4 at once" cli_parallel 4
