#!/usr/bin/env bash
# Builds (once) a minimal Debian 12 (bookworm) guest disk for the guest
# file system tests and benchmarks, and prints the path of its qcow2.
#
#   img=$(bash scripts/guest-image.sh)          # root on Debian 12
#   QIMG_CACHE=/somewhere bash scripts/guest-image.sh
#
# The result lives outside the clone, in
#   ${QIMG_CACHE:-/var/cache/qimg}/debian12-<key: 16 hex of the sha256 of this script and lib/cached-build.sh>/
#     rootfs/          the debootstrap tree (the reference the tests compare with)
#     debian12.qcow2   2 GiB GPT disk: p1 ESP (vfat, 63 MiB), p2 root (ext4,
#                      made from rootfs/ by mkfs.ext4 -d); no bootloader
#     layout           offsets and sizes of the two partitions, in bytes
#   ${QIMG_CACHE:-/var/cache/qimg}/debs/   what debootstrap downloaded, for the next build
# A changed script gets a new directory (older ones are left alone: another
# clone may still use them; remove them by hand). A finished directory is
# never rebuilt; builds are locked (flock, one lock for the cache) so
# concurrent callers wait for one build, and a build is made in a temporary
# directory renamed into place at the end, so an interrupted build leaves
# nothing half-made behind.
#
# Deterministic enough: fixed UUIDs, hash seed, volume id, partition GUIDs
# and file system time stamps; the package versions are whatever the mirror
# serves when the cache is made.
#
# Needs root, debootstrap, e2fsprogs, dosfstools, gdisk (sgdisk),
# qemu-utils and flock (util-linux); scripts/setup.sh installs them. The
# mirror is the one apt uses (/etc/apt/sources.list.d/debian.sources or
# /etc/apt/sources.list), or $QIMG_DEBIAN_MIRROR.
set -euo pipefail

. "$(dirname "$(readlink -f "$0")")/lib/cached-build.sh"
cached_setup debian12
image=$dir/debian12.qcow2

log() { printf 'guest-image: %s\n' "$*" >&2; }

if [ -f "$dir/done" ]; then
	echo "$image"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "guest-image: $dir is not built yet and building it needs root (debootstrap)" >&2
	exit 1
fi
need_tools guest-image debootstrap mkfs.ext4 mkfs.vfat sgdisk qemu-img flock

cached_lock
if [ -f "$dir/done" ]; then # another caller built it while we waited
	echo "$image"
	exit 0
fi

# --- constants that make the image the same every time --------------------
root_uuid=5b0c7f0e-3d4a-4c55-9e1f-6a2b8c9d0e11
root_hash_seed=8e2a6c14-7b3d-4f09-a1c5-d3e4f5a6b7c8
esp_volid=51E7C0DE
esp_fsuuid=51E7-C0DE
disk_guid=1f0e2d3c-4b5a-4968-8776-a5b4c3d2e1f0
esp_partuuid=9a8b7c6d-5e4f-4a3b-9c2d-1e0f2a3b4c5d
root_partuuid=0d1c2b3a-4f5e-4d6c-8b7a-6c5d4e3f2a1b
epoch=1735689600 # 2025-01-01T00:00:00Z, the time stamps mkfs writes
disk_size=$((2 << 30))
esp_start=$((1 << 20))                   # 1 MiB, the usual alignment
root_start=$((64 << 20))                 # the ESP ends just below 64 MiB
root_end=$((disk_size - (1 << 20)))      # leave the backup GPT room
esp_size=$((root_start - esp_start))
root_size=$((root_end - root_start))

work=$(mktemp -d "$cache/.debian12-$key.XXXXXX")
chmod 755 "$work"
cleanup() {
	# debootstrap mounts /proc and /sys inside the tree while it runs;
	# never let rm -rf walk into them if it died there.
	findmnt -rno TARGET | grep "^$work/" | sort -r | xargs -r umount -l || true
	rm -rf "$work"
}
trap cleanup EXIT
rootfs=$work/rootfs
start=$(date +%s)

# --- the root tree ---------------------------------------------------------
m=$(debian_mirror)
log "debootstrap --variant=minbase bookworm from $m (a few minutes)"
# apt's proxy, if it has one, is what debootstrap's wget should use too.
proxy=$(apt-config shell p Acquire::http::Proxy 2>/dev/null | sed -n "s/^p='\(.*\)'$/\1/p")
if [ -n "$proxy" ] && [ -z "${http_proxy:-}" ]; then
	export http_proxy=$proxy
fi
debootstrap --variant=minbase --cache-dir="$cache/debs" bookworm "$rootfs" "$m" >"$work/debootstrap.log" 2>&1 || {
	tail -n 30 "$work/debootstrap.log" >&2
	echo "guest-image: debootstrap failed (log above)" >&2
	exit 1
}
log "debootstrap done in $(($(date +%s) - start)) s"

# The tree a cloud template has: no downloaded packages or apt lists, no
# host names or resolver copied from the build machine, an empty
# machine-id (first boot makes one), and an fstab naming both partitions.
rm -f "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin
find "$rootfs/var/lib/apt/lists" -maxdepth 1 -type f ! -name lock -delete
rm -f "$rootfs/etc/resolv.conf"
: >"$rootfs/etc/machine-id"
echo debian12 >"$rootfs/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tdebian12\n\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n' >"$rootfs/etc/hosts"
mkdir -p "$rootfs/boot/efi"
cat >"$rootfs/etc/fstab" <<EOF
# <file system> <mount point> <type> <options> <dump> <pass>
UUID=$root_uuid / ext4 errors=remount-ro 0 1
UUID=$esp_fsuuid /boot/efi vfat umask=0077 0 1
EOF

# --- the disk --------------------------------------------------------------
raw=$work/disk.raw
truncate -s "$disk_size" "$raw"
log "mkfs.ext4 -d rootfs into partition 2"
E2FSPROGS_FAKE_TIME=$epoch mkfs.ext4 -q -F -L root -U "$root_uuid" \
	-E "offset=$root_start,hash_seed=$root_hash_seed,root_owner=0:0" \
	-d "$rootfs" "$raw" "$((root_size / 1024))k"
log "mkfs.vfat into partition 1"
esp=$work/esp.vfat
truncate -s "$esp_size" "$esp"
# --invariant first: after it, it would override -i.
mkfs.vfat --invariant -i "$esp_volid" -n EFI "$esp" >/dev/null
dd if="$esp" of="$raw" bs=1M seek=$((esp_start >> 20)) conv=notrunc,sparse status=none
rm -f "$esp"
# Not sgdisk -q: with it, sgdisk 1.0.9 exits 0 without writing the table.
sgdisk --disk-guid="$disk_guid" \
	-n "1:$((esp_start / 512)):$((root_start / 512 - 1))" -t 1:EF00 -c 1:EFI -u "1:$esp_partuuid" \
	-n "2:$((root_start / 512)):$((root_end / 512 - 1))" -t 2:8304 -c 2:root -u "2:$root_partuuid" \
	"$raw" >/dev/null
qemu-img convert -f raw -O qcow2 "$raw" "$work/debian12.qcow2"
rm -f "$raw"
qemu-img check -q "$work/debian12.qcow2"

cat >"$work/layout" <<EOF
esp_offset=$esp_start
esp_size=$esp_size
root_offset=$root_start
root_size=$root_size
root_uuid=$root_uuid
EOF
date -u +%Y-%m-%dT%H:%M:%SZ >"$work/done"
rm -f "$work/debootstrap.log"
rm -rf "$dir" # a directory without "done" is nobody's (we hold the lock)
mv -T "$work" "$dir"
trap - EXIT
log "built $image in $(($(date +%s) - start)) s"
echo "$image"
