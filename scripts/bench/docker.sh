#!/usr/bin/env bash
# Per-step overhead of the Docker executor: N independent steps that run
# `true` in busybox:1.36, run by mlpipe (--executor docker, no cache) and by the
# Docker CLI (`docker run --rm busybox:1.36 true`, N times), serially and 4 at a
# time. Prints the best-of-R wall times, per step, and the ratio (goal: mlpipe
# <= 1.1x the CLI).
#
#   N=20 R=3 scripts/bench/docker.sh        (needs bin/mlpipe: make build)
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${N:-20}"
R="${R:-3}"
IMAGE="${IMAGE:-busybox:1.36}"
MLPIPE="$(realpath "${MLPIPE:-bin/mlpipe}")"
scripts/base-images.sh >/dev/null 2>&1 || scripts/base-images.sh
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
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

best() { # best of R wall-clock seconds of a command
	local b="" s e d
	for _ in $(seq 1 "$R"); do
		s=$(date +%s.%N)
		"$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; "$@" >&2; exit 1; }
		e=$(date +%s.%N)
		d=$(echo "$e - $s" | bc -l)
		if [[ -z "$b" ]] || (($(echo "$d < $b" | bc -l))); then b=$d; fi
	done
	echo "$b"
}

mlp 1 >/dev/null 2>&1 # warm: the image is resolved, the state directory exists
docker run --rm "$IMAGE" true
report() {
	printf '%-9s docker CLI %7.2f s (%4.0f ms/step)   mlpipe %7.2f s (%4.0f ms/step)   ratio %.2f (goal <= 1.1)\n' \
		"$1" "$2" "$(echo "$2 * 1000 / $N" | bc -l)" "$3" "$(echo "$3 * 1000 / $N" | bc -l)" "$(echo "$3 / $2" | bc -l)"
}
echo "$N steps of '$IMAGE true', best of $R"
report serial "$(best cli_serial)" "$(best mlp 1)"
report "4 at once" "$(best cli_parallel)" "$(best mlp 4)"
