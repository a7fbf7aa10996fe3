#!/usr/bin/env bash
# qimg's main job, end to end, on inputs shipped in the repository: the
# seed report's workflow (a small Linux image made ready for a cloud, a
# file added inside, proven to boot with it), as far as this machine
# allows without an OpenStack (the upload is printed, not run).
#
#   bash scripts/demo.sh [WORKDIR]        (scripts/setup.sh runs it)
#
#  1. take a small Debian 12 cloud template: scripts/boot-image.sh builds
#     it once from Debian's packages (cloud-init, SYSLINUX, GPT) and caches
#     it outside the clone;
#  2. qimg convert it to a working qcow2, qimg inspect it;
#  3. qimg sysprep: the state a booted instance leaves goes (machine-id,
#     host keys, MAC-bound network configuration, cloud-init's state);
#  4. qimg inject: hostname, an ssh key for root and testdata/demo/cloud/
#     hello.txt as /root/hello.txt — no kernel, no appliance, no mount;
#  5. qimg seed: a NoCloud seed ISO whose user-data prints, on the serial
#     console, the injected file, the hostname and the key count;
#  6. qimg boot-test --local: QEMU (KVM when usable, TCG otherwise) boots
#     the image on a throwaway overlay with a new MAC, and the test passes
#     only when cloud-init finished and the guest printed that line;
#  7. qimg convert -c: the compressed qcow2 to upload, judged by
#     qemu-img check.
# Needs root (the template build), qemu-system-x86 and the packages
# scripts/setup.sh installs. A boot takes 1-4 minutes under TCG; the
# first template build 3-4 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
qimg=$root/bin/qimg
in=$root/testdata/demo/cloud
out=${1:-$(mktemp -d "${TMPDIR:-/tmp}/qimg-demo-cloud.XXXXXX")}
mkdir -p "$out"

log() { printf '==> %s\n' "$*" >&2; }

log "scripts/boot-image.sh (a small Debian 12 cloud template, built once and cached)"
template=$(bash scripts/boot-image.sh)
guest=$out/guest.qcow2
log "qimg convert -O qcow2 $template $guest"
"$qimg" convert -O qcow2 "$template" "$guest"
log "qimg inspect $guest"
"$qimg" inspect "$guest"

log "qimg sysprep $guest"
"$qimg" sysprep "$guest"
log "qimg inject $guest --hostname qimg-demo --ssh-inject root:file:... --upload hello.txt:/root/"
"$qimg" inject "$guest" --hostname qimg-demo --ssh-inject "root:file:$in/demo_key.pub" \
	--upload "$in/hello.txt:/root/"
log "qimg cat $guest /root/hello.txt"
"$qimg" cat "$guest" /root/hello.txt

seed=$out/seed.iso
log "qimg seed -o $seed --user-data $in/user-data"
"$qimg" seed -o "$seed" --user-data "$in/user-data"
log "qimg boot-test --local $guest --seed $seed (the guest must print the injected file)"
"$qimg" boot-test --local "$guest" --seed "$seed" --log "$out/console.log" \
	--expect 'QIMG-DEMO file=\[hello from qimg\] hostname=qimg-demo keys=1' \
	--expect 'QIMG-DEMO ipv4=10\.0\.2\.15/24'

final=$out/cloud.qcow2
log "qimg convert -c -O qcow2 $guest $final"
"$qimg" convert -c -O qcow2 "$guest" "$final"
"$qimg" info "$final"
log "qemu-img check $final (independent verdict)"
qemu-img check "$final"
log "ready for the cloud: qimg upload $final --name demo (then qimg boot-test --cloud demo --flavor F)"
log "demo output kept in $out"
