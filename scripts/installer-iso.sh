#!/usr/bin/env bash
# Builds (once) a small unattended installer ISO, the installer qimg build's
# tests run, and prints the path of its directory.
#
#   dir=$(bash scripts/installer-iso.sh)
#   QIMG_CACHE=/somewhere bash scripts/installer-iso.sh
#
# The result lives outside the clone, in
#   ${QIMG_CACHE:-/var/cache/qimg}/installer-<key: 16 hex of the sha256 of this script and lib/cached-build.sh>/
#     installer.iso   bootable (ISOLINUX, also on the serial port) in the
#                     layout of Debian's installer: install.amd/vmlinuz and
#                     install.amd/initrd.gz, which qimg build finds by itself
#     vmlinuz, initrd.gz  the same kernel and initrd, for tests that boot
#                     them without reading the ISO
#   ${QIMG_CACHE:-/var/cache/qimg}/debs/  the kernel and busybox-static
#                     packages, shared with the other guest scripts
#
# What it installs. The kernel is Debian's (the package linux-image-amd64
# depends on); the initrd holds busybox-static, the modules the install
# needs (virtio disk, ext4, the IDE CD-ROM, ISO 9660) and this machine's
# mke2fs, sfdisk and extlinux with their libraries. Its /init, like d-i,
# reads the answer file /preseed.cfg that qimg build appends to the initrd
# as a cpio archive:
#   d-i qimg/marker string TEXT      required: written to /etc/qimg-marker
#   d-i qimg/hostname string NAME    default qimg-installed
# then puts one bootable partition on /dev/vda (sfdisk), makes ext4 on it
# (mke2fs), copies the payload from the CD-ROM (the kernel, this initrd,
# busybox, an /sbin/init) and the answer file (/root/preseed.cfg), installs
# EXTLINUX and SYSLINUX's MBR, and powers off. It prints
# "qimg-installer: FAILED: WHY" when something goes wrong, then powers off.
# The installed disk boots by itself: EXTLINUX loads the kernel and the
# initrd with qimg.root=/dev/vda1, the initrd's /init mounts it and
# switches to it, and its /sbin/init prints "qimg-payload: TEXT", a login
# prompt "NAME login: " and powers off.
# Test hooks on the kernel command line: qimg.end=poweroff, reboot or hang
# does that at once, without installing.
#
# A changed script gets a new directory; a finished one is never rebuilt;
# builds are locked (flock) and made in a temporary directory renamed into
# place, as in scripts/boot-image.sh.
#
# Needs root (apt-get download as root writes the shared cache), apt,
# dpkg-deb, kmod (modinfo), xorriso, isolinux, syslinux-common, extlinux,
# busybox-static comes as a package file only, cpio, e2fsprogs, fdisk and
# flock; scripts/setup.sh installs them.
set -euo pipefail

. "$(dirname "$(readlink -f "$0")")/lib/cached-build.sh"
cached_setup installer

log() { printf 'installer-iso: %s\n' "$*" >&2; }
die() {
	printf 'installer-iso: %s\n' "$*" >&2
	exit 1
}

if [ -f "$dir/done" ]; then
	echo "$dir"
	exit 0
fi
[ "$(id -u)" -eq 0 ] || die "$dir is not built yet and building it needs root"
isolinux=/usr/lib/ISOLINUX/isolinux.bin
bios=/usr/lib/syslinux/modules/bios
mbr=/usr/lib/syslinux/mbr/mbr.bin
need_tools installer-iso apt-get dpkg-deb modinfo xorriso cpio gzip mke2fs sfdisk extlinux flock ldd
for f in "$isolinux" "$bios/ldlinux.c32" "$mbr"; do
	[ -f "$f" ] || die "$f is missing (install isolinux and syslinux-common; run scripts/setup.sh)"
done

cached_lock
if [ -f "$dir/done" ]; then
	echo "$dir"
	exit 0
fi
work=$(mktemp -d "$cache/.installer-$key.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 755 "$work" # readable by tests that do not run as root
start=$(date +%s)

# deb PACKAGE prints the path of PACKAGE's .deb in the shared cache,
# downloading the candidate version the first time.
deb() {
	local version file
	version=$(apt-cache policy "$1" | awk '/Candidate:/ { print $2 }')
	[ -n "$version" ] && [ "$version" != "(none)" ] || die "apt knows no package $1 (apt-get update?)"
	file=$cache/debs/$1_${version//:/%3a}_amd64.deb
	if [ ! -f "$file" ]; then
		log "apt-get download $1=$version"
		(cd "$work" && apt-get download -q=2 -o APT::Sandbox::User=root "$1=$version") >&2 || die "apt-get download $1 failed"
		mv "$work/$1_"*.deb "$file"
	fi
	echo "$file"
}

# --- the kernel and its modules -------------------------------------------
kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$kpkg" ] || die "cannot tell which kernel linux-image-amd64 depends on"
kdeb=$(deb "$kpkg")
kroot=$work/kernel
mkdir -p "$kroot"
log "unpacking $(basename "$kdeb")"
dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$kroot" --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/*'
kver=$(basename "$kroot"/lib/modules/*)
[ -f "$kroot/boot/vmlinuz-$kver" ] || die "no kernel in $kdeb"
modules=$kroot/lib/modules/$kver/kernel

bbdeb=$(deb busybox-static)
mkdir -p "$work/bb"
dpkg-deb -x "$bbdeb" "$work/bb"

# --- the initrd -----------------------------------------------------------
rd=$work/initrd
mkdir -p "$rd"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,mnt,cdrom,newroot,tools,modules,etc,tmp}
cp "$work/bb/bin/busybox" "$rd/bin/busybox"
ln -s busybox "$rd/bin/sh"

# Modules in load order: each after what its modinfo says it depends on.
declare -A loaded=()
order=()
add_module() {
	local name=$1 file dep
	[ -z "${loaded[$name]:-}" ] || return 0
	loaded[$name]=1
	file=$(find "$modules" -name "$name.ko" -o -name "${name//_/-}.ko" | head -n1)
	[ -n "$file" ] || die "module $name is not in $kpkg"
	for dep in $(modinfo -F depends "$file" | tr , ' '); do
		add_module "$dep"
	done
	cp "$file" "$rd/modules/"
	order+=("$(basename "$file")")
}
# virtio disk, ext4 (crc32c for metadata_csum), the CD-ROM on the IDE
# controller of QEMU's pc machine, and ISO 9660.
for m in virtio_pci virtio_blk crc32c_generic ext4 ata_piix sr_mod isofs; do
	add_module "$m"
done
printf '%s\n' "${order[@]}" >"$rd/modules/order"

# This machine's mke2fs, sfdisk and extlinux with their libraries, under
# /tools (busybox's applets of the same names stay out of the way).
for tool in mke2fs sfdisk extlinux; do
	cp "$(command -v "$tool")" "$rd/tools/"
	for lib in $(ldd "$(command -v "$tool")" | grep -o '/[^ ]*'); do
		cp -L --parents "$lib" "$rd/"
	done
done
cp /etc/mke2fs.conf "$rd/etc/"

cat >"$rd/init" <<'EOF'
#!/bin/sh
# qimg's test installer (scripts/installer-iso.sh), and the initrd of the
# system it installs (qimg.root= on the command line).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
say() { echo "qimg-installer: $*"; }
fail() {
	say "FAILED: $*"
	sync
	poweroff -f
}
load() {
	while read -r m; do
		insmod "/modules/$m" 2>/dev/null || grep -q "^${m%.ko} " /proc/modules || fail "insmod $m"
	done </modules/order
}
waitfor() {
	i=0
	while [ ! -e "$1" ]; do
		i=$((i + 1))
		[ $i -le 300 ] || fail "$1 did not appear"
		sleep 0.1
	done
}
arg() { sed -n "s/.*\\<$1=\\([^ ]*\\).*/\\1/p" /proc/cmdline; }

case $(arg qimg.end) in
poweroff) say "powering off as asked"; poweroff -f ;;
reboot) say "rebooting as asked"; reboot -f ;;
hang) say "hanging as asked"; while :; do sleep 3600; done ;;
esac

root=$(arg qimg.root)
if [ -n "$root" ]; then
	# The installed system's initrd: mount its root and switch to it.
	load
	waitfor "$root"
	mount -t ext4 -o ro "$root" /newroot || fail "cannot mount $root"
	umount /proc /sys
	exec switch_root /newroot /sbin/init
fi

say "started"
[ -f /preseed.cfg ] || fail "no answer file /preseed.cfg in the initrd"
answer() { sed -n "s|^d-i qimg/$1 string ||p" /preseed.cfg | tail -n1; }
marker=$(answer marker)
name=$(answer hostname)
[ -n "$marker" ] || fail "the answer file sets no qimg/marker"
load
waitfor /dev/vda
waitfor /dev/sr0
say "partitioning /dev/vda"
echo 'start=2048, type=83, bootable' | /tools/sfdisk -q --label dos /dev/vda || fail "sfdisk"
waitfor /dev/vda1
say "making ext4 on /dev/vda1"
/tools/mke2fs -q -t ext4 -L qimg-root /dev/vda1 || fail "mke2fs"
mount -t ext4 /dev/vda1 /mnt || fail "cannot mount /dev/vda1"
mount -t iso9660 -o ro /dev/sr0 /cdrom || fail "cannot mount the CD-ROM"
say "copying the payload"
mkdir -p /mnt/bin /mnt/sbin /mnt/etc /mnt/root /mnt/proc /mnt/dev /mnt/sys /mnt/boot/extlinux || fail "mkdir"
cp /cdrom/install.amd/vmlinuz /mnt/boot/vmlinuz &&
	cp /cdrom/install.amd/initrd.gz /mnt/boot/initrd.img &&
	cp /cdrom/payload/busybox /mnt/bin/busybox &&
	ln -s busybox /mnt/bin/sh &&
	cp /cdrom/payload/init /mnt/sbin/init &&
	chmod 755 /mnt/bin/busybox /mnt/sbin/init &&
	cp /cdrom/payload/extlinux.conf /mnt/boot/extlinux/ &&
	cp /preseed.cfg /mnt/root/preseed.cfg || fail "copying the payload"
echo "$marker" >/mnt/etc/qimg-marker
echo "${name:-qimg-installed}" >/mnt/etc/hostname
printf 'PRETTY_NAME="qimg test payload"\nNAME="qimg test payload"\nID=qimg-payload\nVERSION_ID=1\n' >/mnt/etc/os-release
say "installing EXTLINUX"
/tools/extlinux --install /mnt/boot/extlinux >/dev/null || fail "extlinux"
dd if=/cdrom/payload/mbr.bin of=/dev/vda bs=440 count=1 conv=notrunc 2>/dev/null || fail "writing the MBR"
umount /cdrom
umount /mnt || fail "umount"
sync
say "done: installed $marker"
poweroff -f
EOF
chmod 755 "$rd/init"
(cd "$rd" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -9n) >"$work/initrd.gz"

# --- the ISO --------------------------------------------------------------
iso=$work/iso
mkdir -p "$iso/isolinux" "$iso/install.amd" "$iso/payload" "$iso/.disk"
cp "$kroot/boot/vmlinuz-$kver" "$iso/install.amd/vmlinuz"
cp "$work/initrd.gz" "$iso/install.amd/initrd.gz"
cp "$isolinux" "$bios/ldlinux.c32" "$iso/isolinux/"
cat >"$iso/isolinux/isolinux.cfg" <<'EOF'
SERIAL 0 115200
PROMPT 0
TIMEOUT 0
DEFAULT install
LABEL install
	KERNEL /install.amd/vmlinuz
	APPEND initrd=/install.amd/initrd.gz auto=true priority=critical console=ttyS0,115200
EOF
cp "$work/bb/bin/busybox" "$mbr" "$iso/payload/"
cat >"$iso/payload/init" <<'EOF'
#!/bin/sh
# The installed system: prove it booted from its own disk, then power off.
/bin/busybox mount -t proc proc /proc
echo "qimg-payload: $(/bin/busybox cat /etc/qimg-marker)"
printf '\n%s login: ' "$(/bin/busybox cat /etc/hostname)"
/bin/busybox sleep 1
echo
/bin/busybox poweroff -f
EOF
cat >"$iso/payload/extlinux.conf" <<'EOF'
SERIAL 0 115200
PROMPT 0
TIMEOUT 0
DEFAULT payload
LABEL payload
	LINUX /boot/vmlinuz
	INITRD /boot/initrd.img
	APPEND qimg.root=/dev/vda1 console=ttyS0,115200
EOF
echo "qimg test installer (kernel $kver)" >"$iso/.disk/info"
log "xorriso: installer.iso"
xorriso -as mkisofs -r -J -V QIMG_INSTALLER -o "$work/installer.iso" \
	-b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 -boot-info-table \
	"$iso" 2>"$work/xorriso.log" || {
	cat "$work/xorriso.log" >&2
	die "xorriso failed"
}
cp "$iso/install.amd/vmlinuz" "$work/vmlinuz"
rm -rf "$kroot" "$work/bb" "$rd" "$iso" "$work/xorriso.log"
date -u +%Y-%m-%dT%H:%M:%SZ >"$work/done"
rm -rf "$dir"
mv -T "$work" "$dir"
trap - EXIT
log "built $dir in $(($(date +%s) - start)) s"
echo "$dir"
