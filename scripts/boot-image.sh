#!/usr/bin/env bash
# Builds (once) a small bootable Debian 12 (bookworm) disk with a kernel and
# cloud-init, the guest the boot tests start (qimg boot-test, package boot),
# and prints the path of its qcow2.
#
#   img=$(bash scripts/boot-image.sh)
#   QIMG_CACHE=/somewhere bash scripts/boot-image.sh
#
# The result lives outside the clone, in
#   ${QIMG_CACHE:-/var/cache/qimg}/debian12-boot-<key: 16 hex of the sha256 of this script and lib/cached-build.sh>/
#     debian12-boot.qcow2  2 GiB GPT disk that boots by itself under BIOS:
#                          gptmbr.bin in LBA 0; p1 (vfat, 63 MiB, legacy BIOS
#                          bootable) holds SYSLINUX, the kernel and the
#                          initrd; p2 (ext4, made by mkfs.ext4 -d) is the root
#     layout               offsets, sizes and UUIDs of the partitions
#   ${QIMG_CACHE:-/var/cache/qimg}/debs/  what debootstrap downloaded, shared
#                          with scripts/guest-image.sh for the next build
# No mounts and no loop devices make the disk: mkfs.ext4 -d writes the root
# straight into the partition, mtools and syslinux (its mtools installer)
# fill the FAT partition. debootstrap runs in two stages, so that the
# initrd's configuration is in place before the kernel's package makes the
# initrd (once, not again after it).
#
# What the image is: a cloud template as a distribution ships one. An empty
# machine-id, no ssh host keys, no /var/lib/cloud (cloud-init runs on first
# boot), datasource_list NoCloud, ConfigDrive (both local: probing the EC2 or
# OpenStack metadata address costs minutes under TCG), the serial console as
# the kernel console (a login prompt on ttyS0), and an initrd with the
# storage drivers of common virtual machines only (MODULES=list), which keeps
# it small: SYSLINUX loading a 35 MiB initrd costs about 11 s under TCG.
#
# A changed script gets a new directory (older ones are left alone: another
# clone may still use them; remove them by hand). A finished directory is
# never rebuilt; a build is locked (flock) so concurrent callers wait for one
# build, and it is made in a temporary directory renamed into place at the
# end, so an interrupted build leaves nothing half-made behind.
#
# Needs root, debootstrap, e2fsprogs, dosfstools, mtools, syslinux,
# syslinux-common, gdisk (sgdisk), qemu-utils and flock (util-linux);
# scripts/setup.sh installs them. The mirror is the one apt uses, or
# $QIMG_DEBIAN_MIRROR.
set -euo pipefail

. "$(dirname "$(readlink -f "$0")")/lib/cached-build.sh"
cached_setup debian12-boot
image=$dir/debian12-boot.qcow2

log() { printf 'boot-image: %s\n' "$*" >&2; }

if [ -f "$dir/done" ]; then
	echo "$image"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "boot-image: $dir is not built yet and building it needs root (debootstrap)" >&2
	exit 1
fi
gptmbr=/usr/lib/syslinux/mbr/gptmbr.bin
need_tools boot-image debootstrap mkfs.ext4 mkfs.vfat mcopy mmd syslinux sgdisk qemu-img flock
[ -f "$gptmbr" ] || {
	echo "boot-image: $gptmbr is missing (install syslinux-common; run scripts/setup.sh)" >&2
	exit 1
}

cached_lock
if [ -f "$dir/done" ]; then # another caller built it while we waited
	echo "$image"
	exit 0
fi

# --- constants that make the image the same every time --------------------
root_uuid=7c4e2a10-58b3-4d6f-9a21-0e3b5c7d9f42
root_hash_seed=2f6d8b0a-4c1e-4a73-b5d9-e8f0a1b2c3d4
boot_volid=B007C0DE
boot_fsuuid=B007-C0DE
disk_guid=3e5a7c9b-1d2f-4e60-8a4b-c6d8e0f2a4b6
boot_partuuid=6b8d0f1a-3c5e-4f70-9b2d-4e6f8a0c2e4a
root_partuuid=a1c3e5f7-0b2d-4f6a-8c1e-3a5c7e9b1d3f
epoch=1735689600 # 2025-01-01T00:00:00Z, the time stamps mkfs writes
disk_size=$((2 << 30))
boot_start=$((1 << 20))              # 1 MiB, the usual alignment
root_start=$((64 << 20))             # the FAT partition ends just below 64 MiB
root_end=$((disk_size - (1 << 20)))  # leave the backup GPT room
boot_size=$((root_start - boot_start))
root_size=$((root_end - root_start))
cmdline="root=UUID=$root_uuid ro console=tty0 console=ttyS0,115200"
packages=linux-image-amd64,systemd-sysv,udev,dbus,cloud-init,python3-cffi-backend,openssh-server,ifupdown,isc-dhcp-client,iproute2,netbase,e2fsprogs,sudo
# python3-cffi-backend: debootstrap ignores virtual packages, and
# python3-cryptography (ssh keys for cloud-init) needs it named.

work=$(mktemp -d "$cache/.debian12-boot-$key.XXXXXX")
cleanup() {
	# debootstrap and the chroot mount /proc (and more) inside the tree;
	# never let rm -rf walk into them if a step died there.
	findmnt -rno TARGET | grep "^$work/" | sort -r | xargs -r umount -l || true
	rm -rf "$work"
}
trap cleanup EXIT
rootfs=$work/rootfs
start=$(date +%s)

# --- the root tree ---------------------------------------------------------
m=$(debian_mirror)
log "debootstrap --variant=minbase bookworm from $m with a kernel and cloud-init (minutes)"
# apt's proxy, if it has one, is what debootstrap's wget should use too.
proxy=$(apt-config shell p Acquire::http::Proxy 2>/dev/null | sed -n "s/^p='\(.*\)'$/\1/p")
if [ -n "$proxy" ] && [ -z "${http_proxy:-}" ]; then
	export http_proxy=$proxy
fi
debootstrap_failed() {
	tail -n 30 "$work/debootstrap.log" >&2
	echo "boot-image: debootstrap failed (log above)" >&2
	exit 1
}
debootstrap --foreign --variant=minbase --cache-dir="$cache/debs" --include="$packages" \
	bookworm "$rootfs" "$m" >"$work/debootstrap.log" 2>&1 || debootstrap_failed
log "debootstrap first stage done in $(($(date +%s) - start)) s"

# A small initrd (MODULES=list): the storage drivers of common virtual
# machines and ext4, loaded at boot. sr_mod too: cloud-init's ds-identify
# looks for a seed or config drive on a CD-ROM from a systemd generator,
# before udev loads drivers from the root, and disables cloud-init for the
# boot when it finds none. A hook and a conf.d file, not the package's
# conffiles, so dpkg has nothing to ask about.
mkdir -p "$rootfs/etc/initramfs-tools/conf.d" "$rootfs/etc/initramfs-tools/hooks"
echo MODULES=list >"$rootfs/etc/initramfs-tools/conf.d/qimg-boot-image"
cat >"$rootfs/etc/initramfs-tools/hooks/qimg-boot-image" <<'EOF'
#!/bin/sh
# Storage drivers of common virtual machines (disks, the CD-ROM a seed
# comes on) and the root's file system.
[ "$1" = prereqs ] && exit 0
. /usr/share/initramfs-tools/hook-functions
for m in virtio_pci virtio_blk virtio_scsi nvme ahci ata_piix sd_mod sr_mod ext4 crc32c_generic; do
	force_load "$m"
done
EOF
chmod 755 "$rootfs/etc/initramfs-tools/hooks/qimg-boot-image"
# The fstab naming both partitions, before the initrd is made: its fsck
# hook adds e2fsck for the root it finds there.
mkdir -p "$rootfs/boot/efi"
cat >"$rootfs/etc/fstab" <<EOF
# <file system> <mount point> <type> <options> <dump> <pass>
UUID=$root_uuid / ext4 errors=remount-ro 0 1
UUID=$boot_fsuuid /boot/efi vfat umask=0077 0 1
EOF
chroot "$rootfs" /debootstrap/debootstrap --second-stage >>"$work/debootstrap.log" 2>&1 || debootstrap_failed
# Nothing may stay mounted in the tree that mkfs.ext4 -d copies.
findmnt -rno TARGET | grep "^$rootfs/" | sort -r | xargs -r umount -l || true
grep -q "$root_uuid" "$rootfs/etc/fstab" || {
	echo "boot-image: the second stage replaced /etc/fstab" >&2
	exit 1
}
log "debootstrap done in $(($(date +%s) - start)) s"

# The tree a cloud template has: no downloaded packages or apt lists, no
# host names or resolver copied from the build machine, an empty
# machine-id (first boot makes one), no ssh host keys (cloud-init makes
# them) and no cloud-init state.
rm -f "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin
find "$rootfs/var/lib/apt/lists" -maxdepth 1 -type f ! -name lock -delete
rm -f "$rootfs/etc/resolv.conf" "$rootfs"/etc/ssh/ssh_host_*
rm -rf "$rootfs/var/lib/cloud"
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"
echo debian12 >"$rootfs/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tdebian12\n\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n' >"$rootfs/etc/hosts"
cat >"$rootfs/etc/cloud/cloud.cfg.d/90-qimg-datasources.cfg" <<'EOF'
# Local data sources only: probing a metadata address costs minutes
# of time-outs when there is none.
datasource_list: [NoCloud, ConfigDrive, None]
# minbase has no generated locales, and Debian's locale-gen ignores the
# locale cloud-init asks for: its default en_US.UTF-8 fails the locale
# module. C.UTF-8 is built into glibc.
locale: C.UTF-8
EOF
kernel=$(ls "$rootfs"/boot/vmlinuz-*)
initrd=$(ls "$rootfs"/boot/initrd.img-*)
[ -f "$kernel" ] && [ -f "$initrd" ] || {
	echo "boot-image: want one kernel and one initrd in /boot, found: $kernel $initrd" >&2
	exit 1
}
log "kernel $(basename "$kernel"), initrd $(($(stat -c %s "$initrd") >> 20)) MiB"

# --- the boot partition: SYSLINUX, the kernel and the initrd ---------------
boot=$work/boot.vfat
truncate -s "$boot_size" "$boot"
# -h: the hidden sectors before the partition, which the SYSLINUX boot
# sector adds to find ldlinux.sys on the disk. --invariant before -i, or
# it replaces the volume id that fstab names.
export MTOOLS_SKIP_CHECK=1
mkfs.vfat --invariant -i "$boot_volid" -n BOOT -h $((boot_start / 512)) "$boot" >/dev/null
mmd -i "$boot" ::/syslinux
syslinux --install --directory /syslinux "$boot" # ldlinux.sys and ldlinux.c32
cat >"$work/syslinux.cfg" <<EOF
SERIAL 0 115200
PROMPT 0
TIMEOUT 0
DEFAULT debian
SAY qimg-boot-image: SYSLINUX is loading the kernel
LABEL debian
	LINUX /vmlinuz
	INITRD /initrd.img
	APPEND $cmdline
EOF
mcopy -i "$boot" "$work/syslinux.cfg" ::/syslinux/
mcopy -i "$boot" "$kernel" ::/vmlinuz
mcopy -i "$boot" "$initrd" ::/initrd.img

# --- the disk --------------------------------------------------------------
raw=$work/disk.raw
truncate -s "$disk_size" "$raw"
# (sgdisk -q writes nothing on a disk without a table yet: no -q.)
sgdisk --disk-guid="$disk_guid" \
	-n "1:$((boot_start / 512)):$((root_start / 512 - 1))" -t 1:EF00 -c 1:boot -u "1:$boot_partuuid" -A 1:set:2 \
	-n "2:$((root_start / 512)):$((root_end / 512 - 1))" -t 2:8304 -c 2:root -u "2:$root_partuuid" \
	"$raw" >/dev/null
dd if="$gptmbr" of="$raw" bs=440 count=1 conv=notrunc status=none
dd if="$boot" of="$raw" bs=1M seek=$((boot_start >> 20)) conv=notrunc,sparse status=none
rm -f "$boot"
log "mkfs.ext4 -d rootfs into partition 2"
E2FSPROGS_FAKE_TIME=$epoch mkfs.ext4 -q -F -L root -U "$root_uuid" \
	-E "offset=$root_start,hash_seed=$root_hash_seed,root_owner=0:0" \
	-d "$rootfs" "$raw" "$((root_size / 1024))k"
qemu-img convert -f raw -O qcow2 "$raw" "$work/debian12-boot.qcow2"
rm -f "$raw"
qemu-img check -q "$work/debian12-boot.qcow2"

cat >"$work/layout" <<EOF
boot_offset=$boot_start
boot_size=$boot_size
root_offset=$root_start
root_size=$root_size
root_uuid=$root_uuid
kernel=$(basename "$kernel")
cmdline=$cmdline
EOF
findmnt -rno TARGET | grep "^$work/" | sort -r | xargs -r umount -l || true
rm -rf "$rootfs" "$work/debootstrap.log" "$work/syslinux.cfg"
date -u +%Y-%m-%dT%H:%M:%SZ >"$work/done"
rm -rf "$dir" # a directory without "done" is nobody's (we hold the lock)
mv -T "$work" "$dir"
trap - EXIT
log "built $image in $(($(date +%s) - start)) s"
echo "$image"
