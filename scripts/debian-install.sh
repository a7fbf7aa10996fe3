#!/usr/bin/env bash
# A real Debian installer, unattended, through qimg build: Debian 12's own
# d-i (the debian-installer-12-netboot-amd64 package: its kernel and text
# initrd, packed into a small ISO in the layout of Debian's install media)
# installs a minimal Debian 12 from the package mirror apt uses, answered
# by testdata/debian-install/preseed.cfg; qimg boot-test --local then boots
# the result to its login prompt. Too slow for every CI run under TCG
# (tens of minutes), so it is a script: run it, and it prints its timings.
#
#   bash scripts/debian-install.sh [WORKDIR]     (root; network to the mirror)
#
# QIMG_DEBIAN_MIRROR overrides the mirror (host and directory are taken
# from it). The ISO and the disk stay in WORKDIR.
#
# Run on 2026-12-06 on a CI machine (2 cores, TCG, load 8-10): d-i booted,
# took DHCP, read the mirror's Release files and the udeb index, then
# stopped at "[!!] Download installer components": the package proxy
# these machines reach serves .debs but answers 404 for about half the
# udebs the index names (anna, apt-mirror-setup, choose-mirror,
# debootstrap-udeb, grub-installer, partman-ext3, finish-install...; the
# kernel's udebs come), so no install can finish here. The first run
# waited at that dialog until stopped (21 min); since then qimg build fails
# at once on a d-i dialog marked [!!] with the line, which the second run
# did after 968 s (load 7-9). On a machine with a full Debian mirror the
# same command runs to the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
. scripts/lib/cached-build.sh
. scripts/lib/build-qimg.sh
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/qimg-debian-install.XXXXXX")}
mkdir -p "$work"
qimg=$root/bin/qimg
log() { printf '==> [%s] %s\n' "$(date +%T)" "$*" >&2; }

need_tools debian-install.sh xorriso qemu-system-x86_64 qemu-img
[ -x "$qimg" ] || build_qimg "$qimg"

pkg=debian-installer-12-netboot-amd64
if [ ! -f "$work/di/linux" ]; then
	log "fetching $pkg"
	(cd "$work" && apt-get download -q "$pkg" 2>/dev/null && dpkg-deb -x "$pkg"_*.deb pkg)
	mkdir -p "$work/di/install.amd"
	src=$work/pkg/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64
	cp "$src/linux" "$work/di/install.amd/vmlinuz"
	cp "$src/initrd.gz" "$work/di/install.amd/initrd.gz"
	touch "$work/di/linux"
fi
iso=$work/d-i.iso
xorriso -as mkisofs -quiet -R -J -V DEBIAN_12_DI -o "$iso" -graft-points \
	install.amd/vmlinuz="$work/di/install.amd/vmlinuz" install.amd/initrd.gz="$work/di/install.amd/initrd.gz"

preseed=$work/preseed.cfg
cp testdata/debian-install/preseed.cfg "$preseed"
mirror=$(debian_mirror) # http://host/dir
host=${mirror#*://}
host=${host%%/*}
dir=/${mirror#*://*/}
sed -i -e "s|^d-i mirror/http/hostname string .*|d-i mirror/http/hostname string $host|" \
	-e "s|^d-i mirror/http/directory string .*|d-i mirror/http/directory string ${dir%/}|" \
	-e "s|^d-i apt-setup/security_host string .*|d-i apt-setup/security_host string $host|" "$preseed"

t0=$SECONDS
log "qimg build --iso $iso --answers $preseed (mirror $mirror)"
"$qimg" build --iso "$iso" --answers "$preseed" -o "$work/debian12.qcow2" --size 4G --memory 1024 \
	--timeout 3h --log "$work/install.log"
t1=$SECONDS
log "installed in $((t1 - t0)) s"
qemu-img check "$work/debian12.qcow2"
"$qimg" inspect "$work/debian12.qcow2"
log "qimg boot-test --local (login prompt, no cloud-init in this image)"
"$qimg" boot-test --local "$work/debian12.qcow2" --no-default-expect --expect 'login:' --timeout 20m
t2=$SECONDS
log "timings: install $((t1 - t0)) s, boot to login $((t2 - t1)) s; disk $(du -h "$work/debian12.qcow2" | cut -f1)"
