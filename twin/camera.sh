#!/bin/bash
# The board twin's camera: the v4l2loopback module for the twin's pinned
# kernel, and the test that uses it (camera_test.go, TestTwinCamera).
#
# Usage: twin/camera.sh module [arm64|armhf]   builds (or finds in the
#            cache) v4l2loopback.ko and prints its path
#        twin/camera.sh test [arm64|armhf]     the image (build.sh), the
#            .deb, the module, then TestTwinCamera (make twin-camera)
#
# The module is the source of Debian's v4l2loopback-dkms package, built
# out of tree against the same linux-headers and kbuild as the twin's
# gpio-sim (twin/build.sh). The test loads it in the guest after Debian's
# videodev and feeds frames into the loopback device that wicketd reads
# as its camera.
#
# Needs root (the packages and the image cache are root's). The downloaded
# package and the module go to TWIN_CACHE, keyed on the architecture, the
# kernel version and a hash of this script, never into the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
. twin/lib.sh
mode=${1:-}
arch=${2:-arm64}
twin_arch "$arch"

# module: v4l2loopback.ko for TWIN_KREL, path on stdout.
module() {
	local key out image src h hd s root base vm
	key=$(sha256sum "$twin_dir/camera.sh" | cut -c1-12)
	out=$TWIN_CACHE/v4l2loopback-$TWIN_ARCH-$TWIN_KPKG-$key
	if [ -f "$out/v4l2loopback.ko" ]; then
		echo "$out/v4l2loopback.ko"
		return 0
	fi
	[ "$(id -u)" = 0 ] || die "camera.sh needs root (the twin's cache is root's)"

	image=$(ls "$TWIN_DEBS"/linux-image-"$TWIN_KREL"_*.deb 2>/dev/null) ||
		die "no kernel package in $TWIN_DEBS: run twin/build.sh $TWIN_ARCH first"
	# The loopback registers a video device: it needs the kernel's V4L2 core,
	# which Debian builds as the videodev module.
	dpkg-deb -c "$image" | grep "/lib/modules/$TWIN_KREL/kernel/drivers/media/v4l2-core/videodev\.ko" >/dev/null ||
		die "$image has no videodev module: v4l2loopback cannot load on this kernel"

	src=$(ls "$TWIN_DEBS"/v4l2loopback-dkms_*_all.deb 2>/dev/null | tail -1) || true
	if [ -z "$src" ]; then
		log "downloading v4l2loopback-dkms"
		(cd "$TWIN_DEBS" && apt-get download -qq v4l2loopback-dkms 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) || true
		src=$(ls "$TWIN_DEBS"/v4l2loopback-dkms_*_all.deb 2>/dev/null | tail -1) || die "apt-get download v4l2loopback-dkms failed"
	fi

	work=$(mktemp -d "${TMPDIR:-/tmp}/twin-camera.XXXXXX")
	trap 'rm -rf "$work"' EXIT
	h=$work/headers
	mkdir -p "$h" "$work/pkg" "$work/src"
	for d in "$TWIN_DEBS"/linux-headers-{"$TWIN_KREL","$TWIN_KABI"-common}_*.deb \
		"$TWIN_DEBS"/linux-kbuild-6.1_*_"$TWIN_KBUILD_ARCH".deb; do
		dpkg-deb -x "$d" "$h"
	done
	hd=$h/usr/src/linux-headers-$TWIN_KREL
	# The headers' Makefile includes the common headers by absolute path.
	sed -i "s|^include /usr/src/|include $h/usr/src/|" "$hd/Makefile"
	grep -q '^CONFIG_VIDEO_DEV=m' "$hd/.config" || die "the kernel's config has no CONFIG_VIDEO_DEV=m"

	dpkg-deb -x "$src" "$work/pkg"
	s=$(ls -d "$work"/pkg/usr/src/v4l2loopback-*)
	cp "$s"/v4l2loopback.c "$s"/v4l2loopback_formats.h "$work/src/"
	echo 'obj-m := v4l2loopback.o' >"$work/src/Kbuild"

	# A guest-architecture kbuild (armhf) runs through qemu-user with the
	# libraries of the twin's base root file system.
	root=/nonexistent
	if [ "$TWIN_KBUILD_ARCH" != amd64 ]; then
		[ -e "/proc/sys/fs/binfmt_misc/$TWIN_BINFMT" ] || die "binfmt $TWIN_BINFMT not registered: run twin/build.sh $TWIN_ARCH"
		base=$(ls "$TWIN_CACHE"/base-"$TWIN_SUITE"-"$TWIN_ARCH"-*.tar 2>/dev/null | head -1) ||
			die "no base root file system in $TWIN_CACHE: run twin/build.sh $TWIN_ARCH"
		root=$work/root
		mkdir -p "$root"
		tar -xf "$base" -C "$root" ./usr/lib ./lib 2>/dev/null || tar -xf "$base" -C "$root" ./usr/lib
	fi
	QEMU_LD_PREFIX=$root make -s -C "$hd" M="$work/src" ARCH="$TWIN_KARCH" CROSS_COMPILE="$TWIN_CROSS" \
		KBUILD_MODPOST_WARN=1 modules >&2
	vm=$(modinfo -F vermagic "$work/src/v4l2loopback.ko")
	case $vm in
	"$TWIN_KREL "*) ;;
	*) die "v4l2loopback.ko: vermagic '$vm', want $TWIN_KREL" ;;
	esac

	rm -rf "$out.tmp"
	mkdir -p "$out.tmp"
	cp "$work/src/v4l2loopback.ko" "$out.tmp/"
	basename "$src" >"$out.tmp/source"
	rm -rf "$out"
	mv "$out.tmp" "$out"
	log "v4l2loopback from $(basename "$src") for $TWIN_KREL"
	echo "$out/v4l2loopback.ko"
}

case $mode in
module) module ;;
test)
	start=$(date +%s)
	img=$(twin/build.sh "$arch")
	ko=$(module)
	log "image $img, module $ko ready after $(( $(date +%s) - start ))s"
	dist=$(mktemp -d "${TMPDIR:-/tmp}/twin-deb.XXXXXX")
	trap 'rm -rf "$dist"' EXIT
	OUT=$dist scripts/deb.sh "$arch" >&2
	deb=$(ls "$dist"/wicket_*_"$arch".deb)
	TWIN_IMG=$img TWIN_DEB=$deb TWIN_ARCH=$arch TWIN_V4L2LOOPBACK=$ko \
		go test -count=1 -v -timeout 60m -run '^TestTwinCamera$' ./twin/
	log "$arch camera twin passed in $(( $(date +%s) - start ))s"
	;;
*) die "usage: twin/camera.sh module|test [arm64|armhf]" ;;
esac
