#!/usr/bin/env bash
# Makes small base images on a Docker Engine that cannot pull (no registry):
#
#   scripts/base-images.sh            mlpipe/busybox:latest, and busybox:1.36 when
#                                     that tag is absent (the example pipelines use it)
#   scripts/base-images.sh python     also mlpipe/python:3 (Debian bookworm minbase with
#                                     python3, pip, venv and numpy, from debootstrap; a few
#                                     minutes). Like the official python images, pip may
#                                     install into it (no EXTERNALLY-MANAGED marker).
#
# busybox comes from Debian's busybox-static package (or a static busybox already
# installed); the image is FROM scratch with busybox's applets installed in /bin.
# Images that exist are left alone, so a second call takes well under a second.
# Stand-ins for public images (busybox:1.36) carry the label mlpipe.stand_in_for, so
# that `mlpipe submit` does not count them as local-only images.
#
# Environment: BUSYBOX_STAND_INS (default "busybox:1.36"), DEBIAN_MIRROR (default
# http://deb.debian.org/debian).
set -euo pipefail

want_python=0
for a in "$@"; do
	case "$a" in
	busybox) ;;
	python) want_python=1 ;;
	*)
		echo "usage: $0 [busybox] [python]" >&2
		exit 2
		;;
	esac
done

have() { docker image inspect "$1" >/dev/null 2>&1; }
say() { echo "base-images: $*" >&2; }

work=""
workdir() {
	if [[ -z "$work" ]]; then
		work="$(mktemp -d)"
		trap 'rm -rf "$work"' EXIT
	fi
}

# static_busybox prints the path of a statically linked busybox.
static_busybox() {
	local c
	for c in /bin/busybox /usr/bin/busybox; do
		if [[ -x "$c" ]] && ! ldd "$c" >/dev/null 2>&1; then
			echo "$c"
			return
		fi
	done
	workdir
	mkdir -p "$work/deb"
	if ! (cd "$work/deb" && apt-get download busybox-static >/dev/null 2>&1); then
		say "apt-get update (to download busybox-static)"
		quiet apt-get update -qq
		(cd "$work/deb" && quiet apt-get download busybox-static)
	fi
	dpkg-deb -x "$work"/deb/busybox-static_*.deb "$work/bb"
	echo "$work/bb/bin/busybox"
}

# build_busybox TAG [LABEL]: builds the busybox image under TAG.
build_busybox() {
	local tag="$1" label="${2:-}"
	workdir
	local ctx="$work/busybox-ctx"
	if [[ ! -d "$ctx" ]]; then
		mkdir -p "$ctx"
		cp "$(static_busybox)" "$ctx/busybox"
		cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "sh", "-c", "mkdir -p /tmp /etc /root /home && chmod 1777 /tmp && echo 'root:x:0:0:root:/root:/bin/sh' >/etc/passwd && echo 'root:x:0:' >/etc/group"]
CMD ["sh"]
EOF
	fi
	local args=(-q -t "$tag")
	if [[ -n "$label" ]]; then
		args+=(--label "mlpipe.stand_in_for=$label")
	fi
	say "building $tag"
	DOCKER_BUILDKIT=0 quiet docker build "${args[@]}" "$ctx"
}

# quiet runs a command, showing its output only when it fails.
quiet() {
	workdir
	if ! "$@" >"$work/quiet.log" 2>&1; then
		cat "$work/quiet.log" >&2
		say "failed: $*"
		exit 1
	fi
}

if ! have mlpipe/busybox:latest; then
	build_busybox mlpipe/busybox:latest
fi
for ref in ${BUSYBOX_STAND_INS-busybox:1.36}; do
	if ! have "$ref"; then
		build_busybox "$ref" "$ref"
	fi
done

# python_ok: the image is this script's current version (with pip).
python_ok() {
	[[ "$(docker image inspect -f '{{index .Config.Labels "mlpipe.base_image_version"}}' mlpipe/python:3 2>/dev/null)" == 2 ]]
}

if [[ "$want_python" == 1 ]] && ! python_ok; then
	workdir
	if ! command -v debootstrap >/dev/null; then
		say "installing debootstrap"
		quiet apt-get update -qq
		DEBIAN_FRONTEND=noninteractive quiet apt-get install -y -qq debootstrap
	fi
	root="$work/rootfs"
	say "debootstrap bookworm (python3, pip, venv, numpy); this takes a minute or two"
	quiet debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,python3-numpy bookworm "$root" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
	rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
	say "importing mlpipe/python:3"
	tar -C "$root" -c . | docker import \
		--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV LANG=C.UTF-8' \
		--change 'CMD ["python3"]' \
		--change 'LABEL mlpipe.base_image_version=2' \
		- mlpipe/python:3 >/dev/null
fi

for ref in mlpipe/busybox:latest ${BUSYBOX_STAND_INS-busybox:1.36}; do
	say "$ref $(docker image inspect -f '{{.Id}}' "$ref" | cut -c1-19)"
done
if [[ "$want_python" == 1 ]]; then
	say "mlpipe/python:3 $(docker image inspect -f '{{.Id}}' mlpipe/python:3 | cut -c1-19)"
fi
