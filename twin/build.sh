#!/bin/bash
# Builds (or finds in the cache) what the board twin boots for ARCH:
# Debian bookworm's own kernel, a busybox initramfs with the virtio and
# ext4 modules, the gpio-sim module built out of tree against Debian's
# headers, and a debootstrapped root file system with systemd as PID 1.
# Prints the image directory (TWIN_IMG) on stdout.
#
# Usage: twin/build.sh [arm64|armhf]
#
# Needs root (debootstrap, chroot, binfmt_misc). Installs its host tools
# with apt-get. Downloads go to TWIN_CACHE (default /var/cache/wicket-twin),
# never into the repo.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
twin_arch "${1:-arm64}"

[ "$(id -u)" = 0 ] || die "build.sh needs root (debootstrap, chroot)"
if [ -f "$TWIN_IMG/ready" ]; then
	echo "$TWIN_IMG"
	exit 0
fi

host_tools() {
	local need=() c
	for c in "$TWIN_QEMU:qemu-system-arm" "$TWIN_QEMU_USER:qemu-user-static" debootstrap \
		"${TWIN_CROSS}gcc:gcc-${TWIN_CROSS%-}" "mke2fs:e2fsprogs" \
		cpio "zstd:zstd" "depmod:kmod" "qemu-img:qemu-utils" "make:make" "flex:flex" "bison:bison" "bc:bc"; do
		command -v "${c%%:*}" >/dev/null || need+=("${c#*:}")
	done
	[ -e /usr/lib/x86_64-linux-gnu/libelf.so ] || need+=(libelf-dev)
	[ -e /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
	if [ ${#need[@]} -gt 0 ]; then
		log "installing ${need[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	fi
}

# binfmt: the debootstrap second stage runs the guest's binaries through
# qemu-user. binfmt_misc may not be mounted (containers, minimal hosts).
binfmt() {
	local f=/proc/sys/fs/binfmt_misc
	[ -e $f/register ] || mount -t binfmt_misc binfmt_misc $f
	[ -e "$f/$TWIN_BINFMT" ] && return 0
	# The static interpreter, opened at registration (F): works in a chroot.
	sed 's/:[A-Z]*$/:F/; s|:/usr/libexec/qemu-binfmt/[^:]*:|:/usr/bin/'"$TWIN_QEMU_USER"':|' \
		"/usr/lib/binfmt.d/$TWIN_BINFMT.conf" >$f/register
}

# debs: the kernel image and headers of the pinned version for the guest's
# architecture, kbuild (TWIN_KBUILD_ARCH's build) and the kernel source.
debs() {
	if ls "$TWIN_DEBS"/linux-image-"$TWIN_KREL"_*.deb "$TWIN_DEBS"/linux-headers-"$TWIN_KREL"_*.deb \
		"$TWIN_DEBS"/busybox-static_*_"$TWIN_ARCH".deb "$TWIN_DEBS"/linux-source-6.1_*.deb \
		"$TWIN_DEBS"/linux-kbuild-6.1_*_"$TWIN_KBUILD_ARCH".deb >/dev/null 2>&1; then
		return 0
	fi
	mkdir -p "$TWIN_DEBS"
	local guest=("linux-image-$TWIN_KREL=$TWIN_KPKG" "linux-headers-$TWIN_KREL=$TWIN_KPKG"
		"linux-headers-$TWIN_KABI-common=$TWIN_KPKG" busybox-static)
	[ "$TWIN_KBUILD_ARCH" = "$TWIN_ARCH" ] && guest+=("linux-kbuild-6.1=$TWIN_KPKG")
	twin_apt update -qq 2>&1 | grep -v '^W:' >&2 || true
	(cd "$TWIN_DEBS" && twin_apt download -qq "${guest[@]}")
	if [ ! -f "$TWIN_DEBS/host.done" ]; then
		apt-get update -qq
		# The host's kbuild, for the architectures whose modpost it fits.
		(cd "$TWIN_DEBS" && apt-get download -qq "linux-kbuild-6.1=$TWIN_KPKG" "linux-source-6.1=$TWIN_KPKG")
		touch "$TWIN_DEBS/host.done"
	fi
}

# kernel: unpacked to staging (dpkg-deb -x into the root file system would
# replace its usrmerge /lib symlink), with modules.dep made by the host's
# depmod.
kernel() {
	local k=$work/kernel
	mkdir -p "$k"
	dpkg-deb -x "$TWIN_DEBS"/linux-image-"$TWIN_KREL"_*.deb "$k"
	depmod -b "$k" "$TWIN_KREL"
	cp "$k/boot/vmlinuz-$TWIN_KREL" "$work/out/vmlinuz"
}

# gpiosim: gpio-sim and irq_sim from the kernel source, built against
# Debian's headers. irq_to_desc is not exported to modules, so the one
# call through it becomes generic_handle_irq.
gpiosim() {
	local h=$work/headers s=$work/gpio-sim src
	mkdir -p "$h" "$s"
	for d in "$TWIN_DEBS"/linux-headers-{"$TWIN_KREL","$TWIN_KABI"-common}_*.deb \
		"$TWIN_DEBS"/linux-kbuild-6.1_*_"$TWIN_KBUILD_ARCH".deb; do
		dpkg-deb -x "$d" "$h"
	done
	src=$(dpkg-deb --fsys-tarfile "$TWIN_DEBS"/linux-source-6.1_*.deb | tar -x -O --wildcards '*/linux-source-6.1.tar.xz' | tar -xJ -C "$s" --strip-components=1 --wildcards \
		'*/drivers/gpio/gpio-sim.c' '*/drivers/gpio/gpiolib.h' '*/kernel/irq/irq_sim.c' 2>&1) || die "kernel source: $src"
	cp "$s"/drivers/gpio/gpio-sim.c "$s"/drivers/gpio/gpiolib.h "$s"/kernel/irq/irq_sim.c "$s"/
	sed -i 's/handle_simple_irq(irq_to_desc(\([^)]*\)))/generic_handle_irq(\1)/' "$s/irq_sim.c"
	grep -q 'generic_handle_irq' "$s/irq_sim.c" || die "irq_sim.c: the irq_to_desc call was not found"
	# irq_sim is built in when a kernel has it: as a module it needs a licence.
	printf '\n#include <linux/module.h>\nMODULE_LICENSE("GPL");\n' >>"$s/irq_sim.c"
	echo 'obj-m := gpio-sim.o irq_sim.o' >"$s/Kbuild"
	# The headers' Makefile includes the common headers by absolute path.
	local hd=$h/usr/src/linux-headers-$TWIN_KREL
	sed -i "s|^include /usr/src/|include $h/usr/src/|" "$hd/Makefile"
	# A guest-architecture kbuild runs through qemu-user with the guest
	# root file system's libraries.
	QEMU_LD_PREFIX=$work/root make -s -C "$hd" M="$s" ARCH="$TWIN_KARCH" CROSS_COMPILE="$TWIN_CROSS" \
		KBUILD_MODPOST_WARN=1 modules >&2
	local md=$work/kernel/lib/modules/$TWIN_KREL/updates
	mkdir -p "$md"
	cp "$s/gpio-sim.ko" "$s/irq_sim.ko" "$md/"
	depmod -b "$work/kernel" "$TWIN_KREL"
}

# base: the debootstrapped root file system, in two stages (the second
# through qemu-user). It is cached on its own, keyed on the suite,
# architecture and package list: twin script changes reuse it.
base() {
	local r=$work/root pkgs=systemd,systemd-sysv,udev,kmod,procps,adduser
	local base=$TWIN_CACHE/base-$TWIN_SUITE-$TWIN_ARCH-$(echo "$pkgs" | sha256sum | cut -c1-12).tar
	mkdir -p "$r"
	if [ -f "$base" ]; then
		tar -xf "$base" -C "$r"
	else
		debootstrap --foreign --arch="$TWIN_ARCH" --variant=minbase --include="$pkgs" \
			"$TWIN_SUITE" "$r" "$TWIN_MIRROR" >&2
		chroot "$r" /debootstrap/debootstrap --second-stage >&2
		tar -cf "$base.tmp" -C "$r" . && mv "$base.tmp" "$base"
	fi
}

# rootfs: the kernel's modules and the twin's board services from
# twin/guest in the base.
rootfs() {
	local r=$work/root
	rm -rf "$r/var/cache/apt/archives"/*.deb "$r/var/lib/apt/lists"/*_Packages
	mkdir -p "$r/usr/lib/modules"
	cp -a "$work/kernel/lib/modules/$TWIN_KREL" "$r/usr/lib/modules/"
	echo twin >"$r/etc/hostname"
	echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' >"$r/etc/fstab"
	# No network in the twin: nothing waits for it.
	chroot "$r" passwd -d root >/dev/null
	install -m 0755 "$twin_dir/guest/twin-board" "$twin_dir/guest/twin-agent" "$r/usr/local/sbin/"
	install -m 0644 "$twin_dir/guest/twin-board.service" "$twin_dir/guest/twin-agent.service" "$r/etc/systemd/system/"
	mkdir -p "$r/etc/systemd/system/multi-user.target.wants" "$r/etc/systemd/system/sysinit.target.wants"
	ln -sf ../twin-agent.service "$r/etc/systemd/system/multi-user.target.wants/"
	ln -sf ../twin-board.service "$r/etc/systemd/system/sysinit.target.wants/"
	# Quiet, fast boots: no getty on the consoles, no timers.
	chroot "$r" systemctl mask -q getty@tty1.service serial-getty@ttyAMA0.service \
		serial-getty@hvc0.service getty-static.service apt-daily.timer apt-daily-upgrade.timer \
		e2scrub_all.timer fstrim.timer systemd-timesyncd.service 2>/dev/null || true
}

# initramfs: busybox, the modules that reach the root file system, and
# init.sh.
initramfs() {
	local i=$work/initramfs m
	mkdir -p "$i/bin" "$i/dev" "$i/proc" "$i/sys" "$i/newroot" "$i/lib/modules/$TWIN_KREL"
	# The guest's busybox, not the host's.
	dpkg-deb -x "$TWIN_DEBS"/busybox-static_*_"$TWIN_ARCH".deb "$work/busybox"
	cp "$work/busybox/bin/busybox" "$i/bin/busybox"
	ln -s busybox "$i/bin/sh"
	install -m 0755 "$twin_dir/init.sh" "$i/init"
	local kd=$work/kernel/lib/modules/$TWIN_KREL
	local mods="virtio_pci virtio_blk virtio_console ext4 crc32c_generic"
	for m in $mods; do
		# The module and everything it depends on, by modules.dep.
		for f in $(grep -E "(^|/)$m\.ko(\.xz)?:" "$kd/modules.dep" | tr -d ':'); do
			mkdir -p "$i/lib/modules/$TWIN_KREL/$(dirname "$f")"
			cp "$kd/$f" "$i/lib/modules/$TWIN_KREL/$f"
		done
	done
	cp "$kd/modules.dep" "$kd/modules.alias" "$i/lib/modules/$TWIN_KREL/"
	echo "$mods" >"$i/modules"
	(cd "$i" && find . | cpio -o -H newc --quiet) | gzip -1 >"$work/out/initrd.img"
}

image() {
	local size
	size=$(( $(du -sm "$work/root" | cut -f1) + 400 ))
	mke2fs -q -t ext4 -L twin-root -d "$work/root" "$work/out/root.img" "${size}M" >&2
}

host_tools
binfmt
debs
work=$TWIN_IMG.tmp
rm -rf "$work"
mkdir -p "$work/out"
kernel
base
gpiosim
rootfs
initramfs
image
rm -rf "$TWIN_IMG"
mv "$work/out" "$TWIN_IMG"
rm -rf "$work"
touch "$TWIN_IMG/ready"
echo "$TWIN_IMG"
