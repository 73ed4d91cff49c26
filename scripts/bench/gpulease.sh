#!/usr/bin/env bash
# GPU lease contention on go-nvml's 8-GPU mock through one shared lease
# directory: 2 users x 4 processes acquiring and releasing (as root, with the
# users mlpipe-alice and mlpipe-bob that `make test` creates; otherwise one
# user x 8 processes), and the longest wait of an 8-GPU request while 1-GPU
# steps stream in from 6 other processes.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CGO_ENABLED=1 CGO_CFLAGS="-O2 -g -Wno-deprecated-declarations"
MLPIPE_BENCH=1 go test -count=1 -run '^TestBenchLeaseContention$' -v ./gpu | grep -E '^(acquire|8-GPU|--- |ok|FAIL)'
