#!/usr/bin/env bash
# Sets up a Debian 12 machine (run as root) for qimg, builds bin/qimg and
# runs the demo: converts testdata/demo/disk.raw to a compressed qcow2 and
# shows qimg info, qimg check and qemu-img's independent verdict; then
# scripts/demo.sh, the seed workflow: a Debian 12 cloud template sysprepped,
# a file and an ssh key injected, booted under QEMU with a NoCloud seed
# until the guest prints the file, and compressed for upload.
#
#   bash scripts/setup.sh            # install, build, demo
#   SKIP_DEMO=1 bash scripts/setup.sh
#
# Idempotent: packages already installed and a Go toolchain already present
# are kept. Installs:
#   - apt: qemu-utils (qemu-img and qemu-io, the oracle every test compares
#     with), e2fsprogs and time (scripts/bench.sh), git, curl, ca-certificates;
#     the judges of the guest file system tests: fdisk (sfdisk) and gdisk
#     (sgdisk) for partition tables, lvm2 for volumes, and the mkfs tools
#     whose output qimg must recognise (dosfstools, xfsprogs, btrfs-progs,
#     cryptsetup-bin for LUKS, ntfs-3g for mkntfs, xorriso and genisoimage
#     (isoinfo) for ISO 9660), and mtools, which reads back what qimg
#     writes to FAT; cloud-init, whose own schema validator and NoCloud and
#     ConfigDrive datasources judge qimg's user-data checks and seeds; its
#     boot services are switched off (/etc/cloud/cloud-init.disabled), so
#     the machine never looks for a metadata service; debootstrap, with which
#     scripts/guest-image.sh builds the Debian 12 guest the guest tests edit;
#     for the boot tests (package boot, qimg boot-test): qemu-system-x86
#     (with SeaBIOS), and syslinux and syslinux-common, with which
#     scripts/boot-image.sh makes a bootable Debian 12 guest; for the
#     install tests (package build, qimg build): isolinux, extlinux, cpio
#     and kmod (modinfo), with which scripts/installer-iso.sh makes a small
#     unattended installer ISO (it downloads the kernel and busybox-static
#     as package files into the cache; neither is installed here); for the
#     libvirt backend's tests: libvirt-daemon-system (libvirtd, which the
#     tests start privately, never as a service) and libvirt-clients (virsh,
#     which judges the domain XML); ovmf for --firmware uefi; zstd
#     (libzstd's command), which decodes internal/zstdenc's frames
#   - Go: the machine's /usr/local/go; if it is older than go.mod's version,
#     that version through the module proxy (GOTOOLCHAIN)
#   - the Go modules in go.sum (go mod download)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

log() { printf '==> %s\n' "$*" >&2; }

# --- apt packages ---------------------------------------------------------
packages=(qemu-utils e2fsprogs time git curl ca-certificates fdisk gdisk lvm2 debootstrap
	dosfstools xfsprogs btrfs-progs cryptsetup-bin ntfs-3g xorriso genisoimage mtools cloud-init
	qemu-system-x86 syslinux syslinux-common isolinux extlinux cpio kmod
	libvirt-daemon-system libvirt-clients ovmf zstd)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ] || [ "${CI:-}" = true ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup.sh: missing packages ${missing[*]}; run as root" >&2
		exit 1
	fi
	log "apt-get update"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	log "apt-get install ${packages[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi
# cloud-init is installed as a test oracle only: never let it run at boot.
if [ -d /etc/cloud ] && [ "$(id -u)" -eq 0 ]; then
	touch /etc/cloud/cloud-init.disabled
fi

# --- Go -------------------------------------------------------------------
want_go=$(awk '$1 == "go" { print $2; exit }' go.mod)  # e.g. 1.26.8
go_ok() {
	# true if "$1" runs and is at least $want_go
	local v
	v=$("$1" env GOVERSION 2>/dev/null) || return 1
	v=${v#go}
	[ "$(printf '%s\n%s\n' "$want_go" "$v" | sort -V | head -n1)" = "$want_go" ]
}
GO=""
for cand in "$(command -v go || true)" /usr/local/go/bin/go; do
	if [ -n "$cand" ] && [ -x "$cand" ] && go_ok "$cand"; then
		GO=$cand
		break
	fi
done
if [ -z "$GO" ]; then
	# An older go fetches the toolchain go.mod asks for through the Go
	# module proxy (GOTOOLCHAIN); without any go there is nothing to do.
	old=$(command -v go || echo /usr/local/go/bin/go)
	[ -x "$old" ] || { echo "setup.sh: no Go toolchain found (need Go $want_go)" >&2; exit 1; }
	export GOTOOLCHAIN="go$want_go"
	log "fetching Go $want_go through the module proxy (GOTOOLCHAIN)"
	GO=$old
fi
export PATH="$(dirname "$GO"):$PATH"
log "using $(go version)"

# --- modules and build ----------------------------------------------------
log "go mod download"
go mod download
log "CGO_ENABLED=0 go build -o bin/qimg ./cmd/qimg (static, rewritten in 4 MiB writes: scripts/lib/build-qimg.sh)"
. scripts/lib/build-qimg.sh
build_qimg bin/qimg
dirname "$GO" >bin/go-dir  # .ci/run uses the same toolchain
qimg=$root/bin/qimg

[ "${SKIP_DEMO:-}" = 1 ] && exit 0

# --- demo: the main job on the shipped input ------------------------------
demo=testdata/demo
disk=$demo/disk.raw
if [ ! -f "$disk" ]; then
	log "building $disk from $demo/seed.txt"
	seed=$demo/seed.txt
	tmp="$disk.tmp"
	rm -f "$tmp"
	truncate -s 4M "$tmp"
	dd if="$seed" of="$tmp" bs=1 seek=0 conv=notrunc status=none
	dd if="$seed" of="$tmp" bs=1 seek=$((64 << 10)) conv=notrunc status=none
	dd if="$seed" of="$tmp" bs=1 seek=$(((1 << 20) + 512)) conv=notrunc status=none
	line=$(sha256sum "$seed" | cut -d' ' -f1)
	(yes "$line" || true) | head -c $((32 << 10)) | dd of="$tmp" bs=4096 seek=$(((2 << 20) / 4096)) conv=notrunc status=none
	printf '\n' | dd of="$tmp" bs=1 seek=$(((4 << 20) - 1)) conv=notrunc status=none
	mv "$tmp" "$disk"
fi
out=$(mktemp -d "${TMPDIR:-/tmp}/qimg-demo.XXXXXX")
target=$out/disk.qcow2
log "qimg convert -f raw -O qcow2 -c $disk $target"
"$qimg" convert -f raw -O qcow2 -c "$disk" "$target"
log "qimg info $target"
"$qimg" info "$target"
log "qimg check $target"
"$qimg" check "$target"
log "qemu-img check $target (independent verdict)"
qemu-img check "$target"
log "qemu-img compare $disk $target"
qemu-img compare -f raw -F qcow2 "$disk" "$target"

# The rest of the main job: a cloud template made ready, a file added
# inside, and a boot that proves it (scripts/demo.sh says how).
bash scripts/demo.sh "$out/cloud"
log "demo output kept in $out"
