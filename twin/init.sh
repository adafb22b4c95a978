#!/bin/sh
# The twin's initramfs: load the modules that reach the root file system
# (virtio-blk, virtio-pci and ext4 are modules in Debian's kernel), mount
# /dev/vda and hand over to systemd.
PATH=/bin
# --install finds busybox through /proc/self/exe.
/bin/busybox mount -t proc proc /proc
/bin/busybox --install -s /bin
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules); do
	modprobe "$m" || echo "initramfs: modprobe $m failed"
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
if ! mount -t ext4 -o rw /dev/vda /newroot; then
	echo "initramfs: cannot mount /dev/vda"
	exec sh
fi
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
