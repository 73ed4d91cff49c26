#!/usr/bin/env bash
# Builds (once) and prints the path of a real MinIO server for mlpipe's tests.
#
#   scripts/minio.sh path     build if needed, print the binary's path
#   scripts/minio.sh start    build if needed, start a server on 127.0.0.1 with a
#                             temporary data directory and random credentials,
#                             print shell exports (MLPIPE_MINIO_*) and the pid file
#
# The server is built with the Go toolchain from the Go module proxy at a pinned
# version and cached under $HOME/.cache/mlpipe-tools/ (the first build takes about
# ten minutes on two cores).
set -euo pipefail

MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
CACHE="${MLPIPE_TOOLS_DIR:-$HOME/.cache/mlpipe-tools}"
BIN="$CACHE/minio-$MINIO_VERSION/minio"

build() {
	if [[ -x "$BIN" ]]; then
		return
	fi
	mkdir -p "$(dirname "$BIN")"
	echo "building MinIO $MINIO_VERSION into $BIN (once; several minutes)" >&2
	local tmp
	tmp="$(mktemp -d)"
	GOBIN="$tmp" CGO_ENABLED=0 go install "github.com/minio/minio@$MINIO_VERSION" >&2
	mv "$tmp/minio" "$BIN.tmp"
	mv "$BIN.tmp" "$BIN"
	rmdir "$tmp"
}

start() {
	build
	local dir port user pass
	dir="$(mktemp -d -t mlpipe-minio.XXXXXX)"
	port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 19000)"
	user="mlpipe$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	pass="$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	MINIO_ROOT_USER="$user" MINIO_ROOT_PASSWORD="$pass" \
		nohup "$BIN" server "$dir/data" --address "127.0.0.1:$port" --console-address "127.0.0.1:0" \
		>"$dir/minio.log" 2>&1 &
	echo $! >"$dir/minio.pid"
	for _ in $(seq 1 100); do
		if curl -fsS "http://127.0.0.1:$port/minio/health/live" >/dev/null 2>&1; then
			break
		fi
		sleep 0.2
	done
	echo "export MLPIPE_MINIO_ENDPOINT=127.0.0.1:$port"
	echo "export MLPIPE_MINIO_ACCESS_KEY=$user"
	echo "export MLPIPE_MINIO_SECRET_KEY=$pass"
	echo "export MLPIPE_MINIO_SECURE=false"
	echo "# pid file: $dir/minio.pid"
}

case "${1:-path}" in
path)
	build
	echo "$BIN"
	;;
start) start ;;
*)
	echo "usage: $0 path|start" >&2
	exit 2
	;;
esac
