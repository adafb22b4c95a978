#!/bin/bash
# Builds the wicket Debian packages: cross-compiles wicketd and wicketctl
# with the Makefile's flags (static, cgo-free, -trimpath, version ldflags)
# and packages them with nfpm (packaging/nfpm.yaml) into dist/*.deb.
#
# Usage: scripts/deb.sh [ARCH...]     ARCH: armhf, arm64, amd64 (default: all)
#
# Environment:
#   VERSION      version for the binaries (default: git describe, as make)
#   DEB_VERSION  the package version (default: from a VERSION tag like
#                v1.2.3; otherwise 0.0~gitTIME.HASH)
#   BUILD_TIME   commit time in Unix seconds (default: the last commit's)
#   CONFIG       file installed as /etc/wicket/wicketd.yaml
#                (default: configs/wicketd.yaml)
#   OUT          output directory (default: dist)
#   ARMHF_GOARM  GOARM for armhf (default 7; 6 for Raspberry Pi OS on a
#                Pi Zero or Pi 1, whose armhf is ARMv6)
set -euo pipefail
cd "$(dirname "$0")/.."

NFPM=${NFPM:-go run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2}
GO=${GO:-go}
OUT=${OUT:-dist}
CONFIG=${CONFIG:-configs/wicketd.yaml}
VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
BUILD_TIME=${BUILD_TIME:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
ARMHF_GOARM=${ARMHF_GOARM:-7}

if [ -z "${DEB_VERSION:-}" ]; then
	v=${VERSION#v}
	if [[ $v =~ ^[0-9]+\.[0-9] ]]; then
		# v1.2.3-4-gabcdef-dirty → 1.2.3+4.gabcdef.dirty
		DEB_VERSION=$(printf '%s' "$v" | sed 's/-/+/; s/-/./g')
	else
		hash=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
		DEB_VERSION=0.0~git$BUILD_TIME.$hash
		case $v in *dirty) DEB_VERSION=$DEB_VERSION.dirty ;; esac
	fi
fi
if ! [[ $DEB_VERSION =~ ^[0-9][A-Za-z0-9.+~]*$ ]]; then
	echo "deb.sh: DEB_VERSION $DEB_VERSION is not a Debian upstream version" >&2
	exit 2
fi
[ -f "$CONFIG" ] || { echo "deb.sh: CONFIG $CONFIG: no such file" >&2; exit 2; }

arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(armhf arm64 amd64)

export CGO_ENABLED=0
# File times in the packages: the commit's, so a rebuild is identical.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$BUILD_TIME}
ldflags="-s -w -X main.version=$VERSION -X main.buildTime=$BUILD_TIME"
mkdir -p "$OUT"
for arch in "${arches[@]}"; do
	case $arch in
	armhf) goarch=arm goarm=$ARMHF_GOARM dir=linux-armv$ARMHF_GOARM ;;
	arm64) goarch=arm64 goarm='' dir=linux-arm64 ;;
	amd64) goarch=amd64 goarm='' dir=linux-amd64 ;;
	*) echo "deb.sh: unknown architecture $arch (armhf, arm64, amd64)" >&2; exit 2 ;;
	esac
	bin=$OUT/$dir
	echo "build $bin"
	GOOS=linux GOARCH=$goarch GOARM=$goarm $GO build -trimpath -ldflags "$ldflags" \
		-o "$bin/" ./cmd/wicketd ./cmd/wicketctl
	deb=$OUT/wicket_${DEB_VERSION}_$arch.deb
	rm -f "$deb"
	WICKET_VERSION=$DEB_VERSION WICKET_ARCH=$arch WICKET_BIN=$bin WICKET_CONFIG=$CONFIG \
		$NFPM package --config packaging/nfpm.yaml --packager deb --target "$deb" | grep -v "^using deb packager" || true
	[ -f "$deb" ] || { echo "deb.sh: nfpm made no $deb" >&2; exit 1; }
	echo "package $deb ($(du -k "$deb" | cut -f1) KiB)"
done
