#!/usr/bin/env bash
# KFP Python function components with the Docker executor: a chain of N steps
# in the SDK's compiled shape (each pip-installs kfp and one extra package in its
# prologue), on the locally made mlpipe/python:3, offline from a wheel directory
# (PIP_FIND_LINKS). Measures:
#   first   the first run: mlpipe derives the image (no derived image, empty pip cache)
#   second  later runs (--no-cache, so every step runs): best and median of R
#   keep    later runs with the prologue kept (python.keep_prologue: pip starts and
#           finds everything installed)
#   plain   `docker run --rm DERIVED sh -ec PROGRAM ...` of the same step, N times:
#           what a step costs without mlpipe
# and prints per-step times and second/plain (goal: within 1.10).
#
#   N=5 R=3 scripts/bench/pyfunc.sh        (needs bin/mlpipe: make build)
# It removes the images derived from mlpipe/python:3 first.
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${N:-5}"
R="${R:-3}"
MLPIPE="$(realpath "${MLPIPE:-bin/mlpipe}")"
scripts/base-images.sh python >/dev/null 2>&1 || scripts/base-images.sh python
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export MLPIPE_STATE_DIR="$work/state" XDG_CONFIG_HOME="$work/config" PIP_FIND_LINKS="$work/wheels" PIP_NO_INDEX=1
go run ./scripts/bench/pyfunc "$work/wheels" "$work/ir.json" "$N" mlpipe/python:3

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }
run() { "$MLPIPE" run "$work/ir.json" --executor docker --no-cache --output json >/dev/null 2>"$work/run.log" || { cat "$work/run.log" >&2; exit 1; }; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

old="$(docker images -q --filter label=mlpipe.pyfunc.base=mlpipe/python:3 | sort -u)"
if [[ -n "$old" ]]; then docker rmi -f $old >/dev/null; fi
s=$(now); run; first=$(secs "$s" "$(now)")

tag="$("$MLPIPE" build "$work/ir.json" | awk '/python/ {print $(NF-3)}' | head -1)"
program="$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["deploymentSpec"]["executors"]["exec-step1"]["container"]["command"]; print(c[5], end="")' "$work/ir.json")"
source="$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["deploymentSpec"]["executors"]["exec-step1"]["container"]["command"]; print(c[6], end="")' "$work/ir.json")"
input='{"inputs":{"parameterValues":{"x":0}},"outputs":{"parameters":{"Output":{"outputFile":"/tmp/kfp/Output"}},"outputFile":"/tmp/kfp/executor_output.json"}}'
plain() { for _ in $(seq 1 "$N"); do docker run --rm "$tag" sh -ec "$program" "$source" --executor_input "$input" --function_to_execute step >/dev/null 2>&1; done; }

second=() keep=() plains=()
for _ in $(seq 1 "$R"); do
	s=$(now); run; second+=("$(secs "$s" "$(now)")")
	s=$(now); MLPIPE_PYTHON_KEEP_PROLOGUE=true run; keep+=("$(secs "$s" "$(now)")")
	s=$(now); plain; plains+=("$(secs "$s" "$(now)")")
done
sm=$(printf '%s\n' "${second[@]}" | median)
km=$(printf '%s\n' "${keep[@]}" | median)
pm=$(printf '%s\n' "${plains[@]}" | median)
printf 'steps %d, image %s\n' "$N" "$tag"
printf 'first run (derive):  %.2f s\n' "$first"
printf 'second run:          %s s (median %.2f; per step %.3f s)\n' "${second[*]}" "$sm" "$(echo "$sm / $N" | bc -l)"
printf 'prologue kept:       %s s (median %.2f; per step %.3f s)\n' "${keep[*]}" "$km" "$(echo "$km / $N" | bc -l)"
printf 'plain docker run:    %s s (median %.2f; per step %.3f s)\n' "${plains[*]}" "$pm" "$(echo "$pm / $N" | bc -l)"
printf 'second/plain: %.2f   kept/plain: %.2f\n' "$(echo "$sm / $pm" | bc -l)" "$(echo "$km / $pm" | bc -l)"
