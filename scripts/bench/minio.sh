#!/usr/bin/env bash
# Benchmarks mlpipe's MinIO/S3 artifact store against plain minio-go on one
# local MinIO server (storage.TestMinIOThroughput):
#   - a large file (MLPIPE_BENCH_MIB, default 1024) up and down, store vs
#     PutObject/GetObject (goal: >= 0.9x their throughput);
#   - a directory of 1,000 files of 10 KiB, store vs one-by-one PutObject
#     (goal: >= 5x faster).
# MLPIPE_BENCH_ROUNDS (default 3) repetitions, medians reported. Needs about
# 3 GiB of free space in $TMPDIR. The MinIO binary comes from
# scripts/minio.sh (built once) or $MLPIPE_MINIO_BIN.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CGO_CFLAGS="${CGO_CFLAGS:--O2 -g -Wno-deprecated-declarations}"
export MLPIPE_MINIO_BIN="${MLPIPE_MINIO_BIN:-$(scripts/minio.sh path)}"
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(go version | cut -d' ' -f3), load: $(cut -d' ' -f1-3 /proc/loadavg)"
lock=()
if command -v flock >/dev/null; then lock=(flock /tmp/mlpipe-build.lock); fi
MLPIPE_BENCH_MINIO=1 "${lock[@]}" go test -count=1 -timeout 30m -run '^TestMinIOThroughput$' -v ./storage/ |
	grep -E '^\s+minio_bench_test.go:[0-9]+:|^(ok|FAIL|---)' | sed -E 's/^\s+minio_bench_test.go:[0-9]+: //'
