#!/usr/bin/env bash
# Component image builds, BuildKit against the legacy builder (docker.builder):
#   nochange  `mlpipe build` of the 5 example components when nothing changed
#             (content-hash tags: no build at all); per component (goal < 100 ms)
#   oneline   one line appended to components/trainer/component.py (a copy), then
#             `mlpipe build` of it: the daemon rebuilds from the changed COPY on
#   R rounds, alternating the builders; best and median.
#
#   R=3 scripts/bench/build.sh        (needs bin/mlpipe: make build)
set -euo pipefail
cd "$(dirname "$0")/../.."
R="${R:-3}"
MLPIPE="$(realpath "${MLPIPE:-bin/mlpipe}")"
scripts/base-images.sh python >/dev/null 2>&1 || scripts/base-images.sh python
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export MLPIPE_STATE_DIR="$work/state" XDG_CONFIG_HOME="$work/config"
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
best() { sort -n | head -1; }
build() { MLPIPE_DOCKER_BUILDER="$1" "$MLPIPE" build --build-arg BASE_IMAGE=mlpipe/python:3 "${@:2}" >/dev/null 2>"$work/build.log" || { cat "$work/build.log" >&2; exit 1; }; }

cp -r components/trainer "$work/trainer"
sed -i "s#image: .*#image: mlpipe-bench/trainer:dev#" "$work/trainer/component.yaml"
for b in legacy buildkit; do build "$b"; build "$b" "$work/trainer"; done # warm: every image exists

declare -A nochange oneline
for _ in $(seq 1 "$R"); do
	for b in legacy buildkit; do
		s=$(now); build "$b"; nochange[$b]+="$(secs "$s" "$(now)") "
		echo "# change $RANDOM $b" >>"$work/trainer/component.py"
		s=$(now); build "$b" "$work/trainer"; oneline[$b]+="$(secs "$s" "$(now)") "
	done
done
n=$(ls components/*/Dockerfile | wc -l)
for b in legacy buildkit; do
	nc_med=$(printf '%s\n' ${nochange[$b]} | median)
	ol_med=$(printf '%s\n' ${oneline[$b]} | median)
	printf '%-8s no change (%d components): %s s; median %.3f s, %.0f ms per component\n' "$b" "$n" "${nochange[$b]}" "$nc_med" "$(echo "$nc_med * 1000 / $n" | bc -l)"
	printf '%-8s one-line change (trainer):  %s s; median %.2f s, best %.2f s\n' "$b" "${oneline[$b]}" "$ol_med" "$(printf '%s\n' ${oneline[$b]} | best)"
done
