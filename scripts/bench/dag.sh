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
scripts/bench/gendag.py "$N" "$work"
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
