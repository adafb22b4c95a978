# Shared settings of the board twin scripts (sourced, not run).
#
# The kernel is pinned: the gpio-sim module built here loads only on the
# exact kernel ABI it was built against, and old ABIs leave the archive.
# Everything downloaded or built lives in TWIN_CACHE, outside the repo,
# keyed on the architecture, the kernel version and a hash of these
# scripts, so a change to the scripts rebuilds and a warm cache boots in
# seconds.

# Debian bookworm's kernel: ABI 6.1.0-50, package version 6.1.176-1.
TWIN_KABI=${TWIN_KABI:-6.1.0-50}
TWIN_KPKG=${TWIN_KPKG:-6.1.176-1}
TWIN_SUITE=bookworm
TWIN_MIRROR=${TWIN_MIRROR:-http://deb.debian.org/debian}
TWIN_CACHE=${TWIN_CACHE:-/var/cache/wicket-twin}

twin_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() { echo "twin: $*" >&2; exit 1; }
log() { echo "twin: $*" >&2; }

# twin_arch ARCH: sets the per-architecture names. ARCH: arm64 or armhf.
twin_arch() {
	TWIN_ARCH=$1
	case $TWIN_ARCH in
	arm64)
		# kbuild's tools (fixdep, modpost) are the host's amd64 build.
		TWIN_KFLAVOUR=arm64 TWIN_KARCH=arm64 TWIN_CROSS=aarch64-linux-gnu- TWIN_KBUILD_ARCH=amd64
		TWIN_QEMU_USER=qemu-aarch64-static TWIN_BINFMT=qemu-aarch64
		TWIN_QEMU=qemu-system-aarch64 TWIN_CONSOLE=ttyAMA0
		;;
	armhf)
		# armmp-lpae: qemu's virt board with a Cortex-A15 has LPAE, as
		# the Raspberry Pi 2's and later cores do. kbuild's tools are the
		# armhf build, run through qemu-user: the amd64 modpost checks
		# the device-table struct sizes of a 64-bit kernel and fails on
		# a 32-bit one.
		TWIN_KFLAVOUR=armmp-lpae TWIN_KARCH=arm TWIN_CROSS=arm-linux-gnueabihf- TWIN_KBUILD_ARCH=armhf
		TWIN_QEMU_USER=qemu-arm-static TWIN_BINFMT=qemu-arm
		TWIN_QEMU=qemu-system-arm TWIN_CONSOLE=ttyAMA0
		;;
	*) die "unknown architecture $TWIN_ARCH (arm64, armhf)" ;;
	esac
	TWIN_KREL=$TWIN_KABI-$TWIN_KFLAVOUR
	# The scripts that shape the image; a change to any of them is a new key.
	local key
	key=$(cat "$twin_dir"/lib.sh "$twin_dir"/build.sh "$twin_dir"/init.sh "$twin_dir"/guest/* | sha256sum | cut -c1-12)
	TWIN_IMG=$TWIN_CACHE/$TWIN_ARCH-$TWIN_KPKG-$key
	TWIN_DEBS=$TWIN_CACHE/debs/$TWIN_KPKG
}

# twin_apt ARGS: apt-get on a private state in TWIN_CACHE/apt for the
# foreign architectures, so the host's dpkg architectures stay as they are.
twin_apt() {
	local a=$TWIN_CACHE/apt
	mkdir -p "$a/lists/partial" "$a/archives/partial"
	cat >"$a/sources.list" <<SRC
deb [arch=arm64,armhf signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $TWIN_MIRROR $TWIN_SUITE main
SRC
	apt-get -q -o Dir::Etc::SourceList="$a/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
		-o Dir::State::Lists="$a/lists" -o Dir::Cache="$a" -o Dir::State::status=/dev/null \
		-o APT::Architecture="$TWIN_ARCH" -o APT::Architectures::="$TWIN_ARCH" "$@"
}
