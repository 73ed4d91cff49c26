#!/usr/bin/env bash
# Builds (once) and prints the path of MinIO's own client, `mc`, which the
# directory benchmark measures mlpipe's store against
# (scripts/bench/dirs.sh). Pinned version from the Go module proxy, cached
# beside the MinIO server under $HOME/.cache/mlpipe-tools/ (several minutes
# on two cores the first time).
#
#   scripts/mc.sh path     build if needed, print the binary's path
set -euo pipefail

MC_VERSION="v0.0.0-20250313080218-cf909e1063a9"
CACHE="${MLPIPE_TOOLS_DIR:-$HOME/.cache/mlpipe-tools}"
BIN="$CACHE/mc-$MC_VERSION/mc"

if [[ ! -x "$BIN" ]]; then
	mkdir -p "$(dirname "$BIN")"
	echo "building mc $MC_VERSION into $BIN (once; several minutes)" >&2
	tmp="$(mktemp -d)"
	GOBIN="$tmp" CGO_ENABLED=0 go install "github.com/minio/mc@$MC_VERSION" >&2
	mv "$tmp/mc" "$BIN.tmp"
	mv "$BIN.tmp" "$BIN"
	rmdir "$tmp"
fi
case "${1:-path}" in
path) echo "$BIN" ;;
*) echo "usage: $0 path" >&2; exit 2 ;;
esac
