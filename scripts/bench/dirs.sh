#!/usr/bin/env bash
# Directory artifacts through mlpipe's MinIO store against MinIO's own client
# (`mc cp --recursive`), one local server, in one run, alternating order:
# 1,000 x 10 KiB, 100 x 10 MiB, 10 x 100 MiB, upload and download
# (storage.TestMinIODirectoriesAgainstMC; goal: the store >= 1.5x mc's
# throughput). mc and MinIO are built once (scripts/mc.sh, scripts/minio.sh).
# MLPIPE_BENCH_ROUNDS (default 3). Needs about 5 GiB in $TMPDIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CGO_ENABLED=1 CGO_CFLAGS="${CGO_CFLAGS:--O2 -g -Wno-deprecated-declarations}"
export MLPIPE_MINIO_BIN="${MLPIPE_MINIO_BIN:-$(scripts/minio.sh path)}"
export MLPIPE_BENCH_MC="${MLPIPE_BENCH_MC:-$(scripts/mc.sh path)}"
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(go version | cut -d' ' -f3), load: $(cut -d' ' -f1-3 /proc/loadavg)"
go test -count=1 -timeout 60m -run '^TestMinIODirectoriesAgainstMC$' -v ./storage/ |
	grep -E '^\s+minio_mc_bench_test.go:[0-9]+:|^(ok|FAIL|---)' | sed -E 's/^\s+minio_mc_bench_test.go:[0-9]+: //'
