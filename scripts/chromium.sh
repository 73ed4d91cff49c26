#!/usr/bin/env bash
# Prints the path of a headless-capable Chromium for the browser tests of
# `mlpipe ui` (ui/browser_test.go), installing Debian's chromium package when
# none is there (apt-get; needs root, as in CI). Exits 1 when no browser can
# be had; the tests then skip, unless MLPIPE_REQUIRE_BROWSER=1 (CI).
#
#   scripts/chromium.sh path
set -euo pipefail
find_browser() {
	local c
	for c in "${MLPIPE_CHROMIUM:-}" chromium chromium-browser google-chrome; do
		if [[ -n "$c" ]] && command -v "$c" >/dev/null 2>&1; then
			command -v "$c"
			return 0
		fi
	done
	return 1
}
if find_browser; then
	exit 0
fi
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
	echo "chromium.sh: no chromium, and no apt-get as root to install it" >&2
	exit 1
fi
echo "chromium.sh: installing Debian's chromium (a few minutes)" >&2
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; } >"$log" 2>&1; then
	cat "$log" >&2
	echo "chromium.sh: apt-get install chromium failed" >&2
	exit 1
fi
find_browser
