#!/bin/bash
# Boots the board twin for ARCH and runs Wicket's end-to-end tests in it
# (twin/twin_test.go): install from the .deb, scan to relay through the
# kernel's GPIO, the systemd watchdog, and CUTS power cuts (qemu killed).
#
# Usage: twin/run.sh [arm64|armhf] [CUTS]     (root; default arm64, 3 cuts)
set -euo pipefail
cd "$(dirname "$0")/.."
. twin/lib.sh
arch=${1:-arm64}
cuts=${2:-3}
twin_arch "$arch"
start=$(date +%s)

img=$(twin/build.sh "$arch")
log "image $img ready after $(( $(date +%s) - start ))s"
dist=$(mktemp -d "${TMPDIR:-/tmp}/twin-deb.XXXXXX")
trap 'rm -rf "$dist"' EXIT
OUT=$dist scripts/deb.sh "$arch" >&2
deb=$(ls "$dist"/wicket_*_"$arch".deb)
log "package $deb after $(( $(date +%s) - start ))s"

# About 1.5 minutes a cut under emulation on a loaded 2-core host (74
# minutes for 50 on arm64), plus the install, scan and watchdog tests.
timeout=$(( 20 + 3 * cuts ))m
TWIN_IMG=$img TWIN_DEB=$deb TWIN_ARCH=$arch TWIN_CUTS=$cuts \
	go test -count=1 -v -timeout "$timeout" -run '^TestTwin$' ./twin/
log "$arch twin passed in $(( $(date +%s) - start ))s"
