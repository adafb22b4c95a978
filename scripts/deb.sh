#!/bin/bash
# Builds the Wicket Debian packages for each architecture:
#   wicket            the gate: wicketd, its unit, config, man page, docs
#   wicket-authority  the authority's side: wicketctl (signing, publishing,
#                     the collector), the collector's unit and the SQL of
#                     its least-privilege database role
# It cross-compiles with the Makefile's flags (static, cgo-free,
# -trimpath, version ldflags), renders the man pages from the programs'
# own -h output, writes the Debian changelog and copyright, and packages
# with nfpm (packaging/*.yaml) into dist/*.deb.
#
# Needs: Go, and on first use the Go module proxy (or a module cache that
# has it): nfpm is run with "go run" at a pinned version, not installed.
# Set NFPM to an installed nfpm to build offline.
#
# Usage: scripts/deb.sh [ARCH...]     ARCH: armhf, arm64, amd64 (default: all)
#
# Environment:
#   VERSION        version for the binaries (default: git describe, as make)
#   DEB_VERSION    the package version (default: from a VERSION tag like
#                  v1.2.3; otherwise 0.0~gitTIME.HASH)
#   DEB_MAINTAINER the packages' Maintainer (default: the project's, the
#                  Upstream-Contact of packaging/copyright)
#   BUILD_TIME     commit time in Unix seconds (default: the last commit's)
#   CONFIG         file installed as /etc/wicket/wicketd.yaml
#                  (default: configs/wicketd.yaml)
#   OUT            output directory (default: dist)
#   ARMHF_GOARM    GOARM for armhf (default 7; 6 for Raspberry Pi OS on a
#                  Pi Zero or Pi 1, whose armhf is ARMv6)
#   NFPM           the nfpm command (default: go run ...nfpm@v2.45.2)
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
# The project's contact, written once: packaging/copyright's Upstream-Contact.
DEB_MAINTAINER=${DEB_MAINTAINER:-$(sed -n 's/^Upstream-Contact: //p' packaging/copyright)}
# The Maintainer is "Name <user@host>" with a host mail can reach: lintian
# calls anything else malformed-contact or bogus-mail-host, and a name
# reserved for examples and tests (RFC 2606, RFC 6761) reaches nobody.
if ! [[ $DEB_MAINTAINER =~ ^[^\<\>@]+\ \<[^\<\>@\ ]+@(([A-Za-z0-9-]+\.)+[A-Za-z]{2,})\>$ ]]; then
	echo "deb.sh: DEB_MAINTAINER '$DEB_MAINTAINER': want 'Name <user@host.domain>'" >&2
	exit 2
fi
case ${BASH_REMATCH[1],,} in
*.invalid | *.test | *.example | *.localhost | *.local | example.com | example.net | example.org | *.example.com | *.example.net | *.example.org)
	echo "deb.sh: DEB_MAINTAINER '$DEB_MAINTAINER': ${BASH_REMATCH[1]} is reserved and reaches nobody; name a mailbox the project reads" >&2
	exit 2
	;;
esac

export CGO_ENABLED=0
# File times in the packages: the commit's, so a rebuild is identical.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$BUILD_TIME}
ldflags="-s -w -X main.version=$VERSION -X main.buildTime=$BUILD_TIME"
mkdir -p "$OUT"

# Files shared by every architecture: man pages (from this machine's build
# of the programs), changelog, copyright, third-party licences.
gen=$OUT/gen
rm -rf "$gen"
mkdir -p "$gen/host"
$GO build -trimpath -ldflags "$ldflags" -o "$gen/host/" ./cmd/wicketd ./cmd/wicketctl
date_iso=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
packaging/man/manpage.sh packaging/man/wicketd.8 "$gen/host/wicketd" "$DEB_VERSION" "$date_iso" | gzip -9n >"$gen/wicketd.8.gz"
packaging/man/manpage.sh packaging/man/wicketctl.1 "$gen/host/wicketctl" "$DEB_VERSION" "$date_iso" | gzip -9n >"$gen/wicketctl.1.gz"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
for pkg in wicket wicket-authority; do
	mkdir -p "$gen/$pkg"
	# A native package's changelog: one entry for this build.
	{
		printf '%s (%s) unstable; urgency=medium\n\n' "$pkg" "$DEB_VERSION"
		printf '  * Build of Wicket %s (commit %s).\n\n' "$VERSION" "$commit"
		printf ' -- %s  %s\n' "$DEB_MAINTAINER" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
	} | gzip -9n >"$gen/$pkg/changelog.gz"
	sed -e "s|^Upstream-Contact: .*|Upstream-Contact: $DEB_MAINTAINER|" -e "s|/PACKAGE/|/$pkg/|" \
		packaging/copyright >"$gen/$pkg/copyright"
done
# licence NAME DIR: a heading and the licence files in DIR.
licence() {
	local f
	printf '%s\n%s\n\n' "$1" "$(printf '%s' "$1" | tr -c '\n' '=')"
	for f in "$2"/LICENSE* "$2"/LICENCE* "$2"/COPYING* "$2"/NOTICE* "$2"/PATENTS "$2"/edl-v* "$2"/epl-v*; do
		if [ -f "$f" ]; then cat "$f" && echo; fi
	done
	echo
}
# third_party PKG CMD: the licences of the Go standard library and of
# every module linked into CMD.
third_party() {
	local mod dir
	{
		licence "Go $($GO env GOVERSION): standard library and runtime" "$($GO env GOROOT)"
		$GO list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}}@{{.Version}} {{.Dir}}{{end}}{{end}}' "$2" |
			sort -u | while read -r mod dir; do licence "$mod" "$dir"; done
	} | gzip -9n >"$gen/$1/third-party-licenses.gz"
}
third_party wicket ./cmd/wicketd
third_party wicket-authority ./cmd/wicketctl

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
	for pkg in wicket wicket-authority; do
		deb=$OUT/${pkg}_${DEB_VERSION}_$arch.deb
		rm -f "$deb"
		WICKET_VERSION=$DEB_VERSION WICKET_ARCH=$arch WICKET_BIN=$bin WICKET_CONFIG=$CONFIG \
			WICKET_GEN=$gen WICKET_MAINTAINER=$DEB_MAINTAINER \
			$NFPM package --config "packaging/$pkg.yaml" --packager deb --target "$deb" | grep -v "^using deb packager" || true
		[ -f "$deb" ] || { echo "deb.sh: nfpm made no $deb" >&2; exit 1; }
		echo "package $deb ($(du -k "$deb" | cut -f1) KiB)"
	done
done
