#!/usr/bin/env bash
# Compiles a generated 5,000-task pipeline with bin/mlpipe and reports wall
# time and peak memory (goal: under 1 s and 200 MB).
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${N:-5000}"
MLPIPE="${MLPIPE:-bin/mlpipe}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/c.yaml" <<'YAML'
name: echo
inputs:
- {name: msg, type: String}
- {name: n, type: Integer, default: '1'}
outputs:
- {name: out, type: String}
implementation:
  container:
    image: busybox
    command: [sh, -c, 'echo "$0" > "$1"']
    args: [{inputValue: msg}, {outputPath: out}]
YAML
{
	echo "name: big"
	echo "inputs: {seed: {type: String, default: x}}"
	echo "tasks:"
	for ((i = 0; i < N; i++)); do
		if ((i < 50)); then
			echo "  t$i: {component: c.yaml, inputs: {msg: '\${{ inputs.seed }}'}}"
		else
			echo "  t$i: {component: c.yaml, inputs: {msg: 'from \${{ tasks.t$(((i / 50 - 1) * 50 + (i * 7) % 50)).outputs.out }}', n: $i}}"
		fi
	done
} > "$work/pipeline.yaml"
for fmt in yaml json; do
	best=""
	for _ in 1 2 3; do
		/usr/bin/time -f "%e %M" -o "$work/time" "$MLPIPE" compile "$work/pipeline.yaml" --format "$fmt" -o "$work/out.$fmt" 2>/dev/null
		read -r secs kb < "$work/time"
		if [[ -z "$best" ]] || awk "BEGIN{exit !($secs < ${best%% *})}"; then best="$secs $kb"; fi
	done
	read -r secs kb <<< "$best"
	printf 'compile %d tasks to %s: best of 3 %.2f s, peak RSS %d MB, output %d KB\n' "$N" "$fmt" "$secs" $((kb / 1024)) $(($(stat -c %s "$work/out.$fmt") / 1024))
done
