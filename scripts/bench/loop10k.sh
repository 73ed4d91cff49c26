#!/usr/bin/env bash
# Ten thousand tasks: a for_each over N (default 10,000) items of a trivial
# step (`true`), run by mlpipe (process executor, J=2 at a time, no cache)
# and by `make -jJ` over N independent targets running the same command;
# then mlpipe's peak RSS, and how long `runs show` and `runs ls` of that run
# take. MLPIPE_CPUPROFILE=FILE profiles the mlpipe run.
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${N:-10000}"
J="${J:-2}"
MLPIPE="$(realpath "${MLPIPE:-bin/mlpipe}")"
work="$(mktemp -d)"
[[ -n "${KEEP:-}" ]] && echo "work dir: $work" || trap 'rm -rf "$work"' EXIT
export MLPIPE_STATE_DIR="$work/state" XDG_CONFIG_HOME="$work/config"
python3 - "$N" "$work" <<'PY'
import sys
n, work = int(sys.argv[1]), sys.argv[2]
with open(work + "/true.yaml", "w") as f:
    f.write("name: noop\ninputs: [{name: id, type: Integer}]\nimplementation: {container: {image: busybox, command: [true], args: [{inputValue: id}]}}\n")
with open(work + "/pipeline.yaml", "w") as f:
    f.write("name: loop%d\ninputs:\n  items: {type: List, default: %s}\ntasks:\n  work:\n    component: true.yaml\n    for_each: ${{ inputs.items }}\n    inputs: {id: '${{ item }}'}\n    cache: false\n" % (n, list(range(n))))
with open(work + "/Makefile", "w") as f:
    names = ["t%d" % i for i in range(n)]
    f.write(".PHONY: all %s\nall: %s\n" % (" ".join(names), " ".join(names)))
    for i, t in enumerate(names):
        f.write("%s:\n\t@true %d\n" % (t, i))
PY
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
make_t=$(secs make -s -C "$work" -j"$J" all)
mlp_t=$(secs /usr/bin/time -o "$work/time" -f '%M' "$MLPIPE" run "$work" --executor process --max-parallel "$J" --output json)
rss_kb=$(tail -1 "$work/time")
show_t=$(secs "$MLPIPE" runs show latest)
showj_t=$(secs "$MLPIPE" runs show latest --output json)
ls_t=$(secs "$MLPIPE" runs ls)
printf '%d items, %d at a time\n' "$N" "$J"
printf 'make -j%s:              %.2f s\n' "$J" "$make_t"
printf 'mlpipe run:            %.2f s (ratio %.2f, goal <= 1.5)\n' "$mlp_t" "$(echo "$mlp_t / $make_t" | bc -l)"
printf 'mlpipe peak RSS:       %d MB (goal < 300)\n' "$((rss_kb / 1024))"
printf 'runs show (text/json): %.2f / %.2f s; runs ls: %.2f s (goal < 0.5)\n' "$show_t" "$showj_t" "$ls_t"
