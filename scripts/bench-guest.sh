#!/usr/bin/env bash
# Times qimg's guest commands against libguestfs's on the same 2 GiB Debian
# 12 qcow2 in one run, and prints a table of medians, min-max, ratios and
# peak RSS. The operations (OPS, default "upload cat"):
#   upload     qimg inject IMG --upload FILE:/root/   vs  virt-customize -a IMG --upload FILE:/root/
#   cat        qimg cat IMG /etc/os-release           vs  virt-cat -a IMG /etc/os-release
#   customize  qimg inject IMG --hostname H --ssh-inject root:string:KEY --upload FILE:/root/
#              vs virt-customize -a IMG with the same options
#   sysprep    qimg sysprep IMG                       vs  virt-sysprep -a IMG (default operations both)
#
#   bash scripts/bench-guest.sh [WORKDIR]     QIMG_SAMPLES=10 VIRT_SAMPLES=3
#   IMAGE=boot OPS="customize sysprep" bash scripts/bench-guest.sh
#
# The image is the one of scripts/guest-image.sh, or with IMAGE=boot the
# bootable one of scripts/boot-image.sh (kernel, cloud-init). For sysprep
# the image first gets what a booted instance leaves behind (machine-id,
# ssh host keys, MAC-bound udev and ifupdown files, cloud-init state, a
# DHCP lease, logs; put there with qimg inject --copy-in, not timed), so
# that both tools have work to do.
#
# libguestfs runs with LIBGUESTFS_BACKEND=direct (qemu started by the
# library, no libvirt). Without /dev/kvm its appliance runs under TCG, which
# is libguestfs's real cost on such a machine; the script says which it is.
# If libguestfs-tools is missing it is installed with apt (about 100
# packages, with linux-image-amd64: supermin builds the appliance from the
# host's kernel). If the appliance cannot start, the script prints why and
# still times qimg.
#
# Every edit sample starts from a fresh copy of the cached image (the copy
# and its flush are not timed); the image is read just before each run, so
# the page cache is warm for both tools alike. Times are wall clock (bash
# EPOCHREALTIME around the run); peak RSS is GNU time's %M, which for
# libguestfs is its largest process (the qemu running the appliance), not
# the sum of the process tree. The tools alternate sample by sample.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/qimg-bench-guest}
qimg_samples=${QIMG_SAMPLES:-10}
ops=${OPS:-upload cat}
case "${IMAGE:-guest}" in
guest) image_script=scripts/guest-image.sh ;;
boot) image_script=scripts/boot-image.sh ;;
*)
	echo "IMAGE must be guest or boot" >&2
	exit 2
	;;
esac
for op in $ops; do
	case "$op" in
	upload | cat | customize | sysprep) ;;
	*)
		echo "unknown operation in OPS: $op" >&2
		exit 2
		;;
	esac
done
virt_samples=${VIRT_SAMPLES:-3}
export LIBGUESTFS_BACKEND=direct
mkdir -p "$work" bin

log() { printf '==> %s\n' "$*" >&2; }

image=$(bash "$image_script")
. scripts/lib/build-qimg.sh
build_qimg bin/qimg
qimg=$PWD/bin/qimg

# --- libguestfs -------------------------------------------------------------
install_libguestfs() {
	command -v virt-customize >/dev/null && ls /boot/vmlinuz-* >/dev/null 2>&1 && return 0
	if [ "$(id -u)" -ne 0 ]; then
		log "libguestfs-tools is missing and installing it needs root"
		return 1
	fi
	log "apt-get install libguestfs-tools linux-image-amd64 (large, a few minutes)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libguestfs-tools linux-image-amd64 >"$work/apt.log" 2>&1 || {
		tail -n 20 "$work/apt.log" >&2
		return 1
	}
}

# appliance_ok starts the appliance once (supermin builds it on first use,
# which is not timed) and says whether it works.
appliance_ok() {
	log "libguestfs-test-tool (builds and starts the appliance once)"
	local t0=$EPOCHREALTIME
	if libguestfs-test-tool >"$work/test-tool.log" 2>&1; then
		log "appliance started in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
		return 0
	fi
	log "libguestfs cannot run here; the end of libguestfs-test-tool's output:"
	grep -v '^ ' "$work/test-tool.log" | tail -n 25 >&2
	return 1
}

virt=0
if install_libguestfs && appliance_ok; then virt=1; fi
kvm="no /dev/kvm: the appliance runs under TCG (software emulation)"
[ -c /dev/kvm ] && kvm="/dev/kvm present: the appliance runs under KVM"

# --- inputs -----------------------------------------------------------------
upload=$work/upload.txt
printf 'qimg bench-guest upload %s\n' "$(date -u +%FT%TZ)" >"$upload"
pristine=$work/pristine.qcow2
cp --sparse=always "$image" "$pristine"
key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBenchQimgGuestKeyForCustomizeAndSysprep00 bench@qimg"

# plant_instance adds to the pristine image what a booted instance leaves
# (the files a boot of the IMAGE=boot guest wrote, with its MAC address).
plant_instance() {
	local tree=$work/plant mac=52:54:00:12:34:56 iid=iid-6c71b4c2326846b8 t
	rm -rf "$tree"
	mkdir -p "$tree/etc/ssh" "$tree/etc/udev/rules.d" "$tree/etc/network/interfaces.d" \
		"$tree/var/lib/cloud/instances/$iid/sem" "$tree/var/lib/cloud/data" "$tree/var/lib/dhcp" "$tree/var/log"
	echo c2c7a492701a49109d73e3032b3c37dc >"$tree/etc/machine-id"
	for t in rsa ecdsa ed25519; do
		ssh-keygen -q -N '' -t "$t" -C root@bench -f "$tree/etc/ssh/ssh_host_${t}_key"
	done
	echo "SUBSYSTEM==\"net\", ACTION==\"add\", DRIVERS==\"?*\", ATTR{address}==\"$mac\", NAME=\"ens3\"" \
		>"$tree/etc/udev/rules.d/70-persistent-net.rules"
	printf 'auto lo\niface lo inet loopback\n\nauto ens3\niface ens3 inet dhcp\n' >"$tree/etc/network/interfaces.d/50-cloud-init"
	ln -s "/var/lib/cloud/instances/$iid" "$tree/var/lib/cloud/instance"
	echo "DataSourceNoCloud: DataSourceNoCloud [seed=/dev/sr0][dsmode=net]" >"$tree/var/lib/cloud/instances/$iid/datasource"
	for t in config_ssh config_set_hostname config_runcmd; do echo 1765021769.1 >"$tree/var/lib/cloud/instances/$iid/sem/$t"; done
	echo "$iid" >"$tree/var/lib/cloud/data/instance-id"
	printf 'lease {\n  interface "ens3";\n  fixed-address 10.0.2.15;\n}\n' >"$tree/var/lib/dhcp/dhclient.ens3.leases"
	echo "Cloud-init v. 22.4.2 finished" >"$tree/var/log/cloud-init.log"
	"$qimg" inject -q "$pristine" --copy-in "$tree/etc:/" --copy-in "$tree/var:/"
}
case " $ops " in *" sysprep "*) plant_instance ;; esac
results=$work/results.txt
: >"$results"

# sample TOOL OP: one timed run, appended to $results as "op|tool|s|KiB".
sample() {
	local tool=$1 op=$2 target=$work/edit.$1.qcow2 out=$work/out.$1.$2 t0 t1 rss
	local -a cmd
	case "$op" in
	upload)
		cp --sparse=always "$pristine" "$target"
		# Flush the copy: else a tool's fsync pays for writing it back.
		sync "$target"
		if [ "$tool" = qimg ]; then
			cmd=("$qimg" inject -q "$target" --upload "$upload:/root/")
		else
			cmd=(virt-customize -q -a "$target" --upload "$upload:/root/")
		fi
		;;
	customize | sysprep)
		cp --sparse=always "$pristine" "$target"
		sync "$target"
		if [ "$op" = sysprep ] && [ "$tool" = qimg ]; then
			cmd=("$qimg" sysprep -q "$target")
		elif [ "$op" = sysprep ]; then
			cmd=(virt-sysprep -q -a "$target")
		else
			local -a opts=(--hostname bench-host --ssh-inject "root:string:$key" --upload "$upload:/root/")
			if [ "$tool" = qimg ]; then
				cmd=("$qimg" inject -q "$target" "${opts[@]}")
			else
				cmd=(virt-customize -q -a "$target" "${opts[@]}")
			fi
		fi
		;;
	cat)
		target=$pristine
		if [ "$tool" = qimg ]; then
			cmd=("$qimg" cat "$target" /etc/os-release)
		else
			cmd=(virt-cat -a "$target" /etc/os-release)
		fi
		;;
	esac
	cat "$target" >/dev/null
	t0=$EPOCHREALTIME
	/usr/bin/time -f %M -o "$work/rss.$tool" "${cmd[@]}" >"$out" 2>"$work/err.$tool" || {
		echo "$tool $op failed:" >&2
		cat "$work/err.$tool" >&2
		exit 1
	}
	t1=$EPOCHREALTIME
	rss=$(tail -n 1 "$work/rss.$tool")
	echo "$op|$tool|$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')|$rss" >>"$results"
	verify "$tool" "$op" "$target" "$out"
}

# verify checks that a run did its job: the uploaded file reads back (by
# the other tool when there is one), cat printed the guest's os-release,
# customize set the hostname and root's key, sysprep removed the host keys,
# the udev rule and the lease (what both tools remove on Debian).
verify() {
	local tool=$1 op=$2 target=$3 out=$4 got
	case "$op" in
	upload | customize)
		got=$("$qimg" cat "$target" /root/upload.txt)
		[ "$got" = "$(cat "$upload")" ] || { echo "$tool $op: /root/upload.txt reads back as '$got'" >&2; exit 1; }
		;;&
	customize)
		got=$("$qimg" cat "$target" /etc/hostname /root/.ssh/authorized_keys)
		[ "$got" = "bench-host"$'\n'"$key" ] || { echo "$tool customize: hostname and key read back as '$got'" >&2; exit 1; }
		;;
	sysprep)
		got=$(for d in /etc/ssh /etc/udev/rules.d /var/lib/dhcp; do "$qimg" ls "$target" "$d"; done)
		case "$got" in *_host_* | *persistent-net* | *leases*)
			echo "$tool sysprep left: $got" >&2
			exit 1
			;;
		esac
		;;
	cat)
		grep -q '^VERSION_ID="12"$' "$out" || { echo "$tool cat: unexpected output" >&2; cat "$out" >&2; exit 1; }
		return
		;;
	esac
	qemu-img check -q "$target" || { echo "$tool $op: qemu-img check failed" >&2; exit 1; }
}

log "warm-up"
for op in $ops; do sample qimg "$op"; done
: >"$results"
rounds=$((qimg_samples > virt_samples ? qimg_samples : virt_samples))
for ((r = 0; r < rounds; r++)); do
	for op in $ops; do
		tools=(qimg)
		if [ "$virt" = 1 ] && [ "$r" -lt "$virt_samples" ]; then
			if ((r % 2)); then tools=(qimg virt); else tools=(virt qimg); fi
		fi
		for tool in "${tools[@]}"; do
			if [ "$tool" = qimg ] && [ "$r" -ge "$qimg_samples" ]; then continue; fi
			sample "$tool" "$op"
		done
	done
	log "round $((r + 1))/$rounds done"
done
# The virt-cat output and qimg cat's must be the same bytes.
if [ "$virt" = 1 ] && [ -f "$work/out.virt.cat" ] && ! cmp -s "$work/out.qimg.cat" "$work/out.virt.cat"; then
	echo "qimg cat and virt-cat printed different bytes" >&2
	exit 1
fi

# --- table ------------------------------------------------------------------
lgver="libguestfs: not run"
if [ "$virt" = 1 ]; then
	lgver=$(dpkg-query -W -f='${Package} ${Version}, ' libguestfs0 guestfs-tools 2>/dev/null)
	lgver=${lgver%, }
fi
echo
echo "qimg $(git describe --always --dirty 2>/dev/null) vs $lgver (LIBGUESTFS_BACKEND=direct), $(qemu-system-x86_64 --version 2>/dev/null | head -1 || echo 'no qemu-system')"
echo "$(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; $kvm"
echo "image: $image ($(du -m "$image" | cut -f1) MiB allocated, 2 GiB virtual); samples: qimg $qimg_samples, libguestfs $virt_samples"
echo
printf '| %-24s | %-26s | %-26s | %-9s | %-24s |\n' operation "libguestfs s (min-max)" "qimg s (min-max)" "speedup" "peak RSS MiB lg / qimg"
printf '|%s|%s|%s|%s|%s|\n' "--------------------------" "----------------------------" "----------------------------" "-----------" "--------------------------"
for op in $ops; do
	case "$op" in
	upload) name="inject --upload" ;;
	cat) name="cat /etc/os-release" ;;
	customize) name="inject --hostname --ssh-inject --upload" ;;
	sysprep) name="sysprep (defaults)" ;;
	esac
	awk -F'|' -v op="$op" -v name="$name" '
		function median(a, n,   s, i, j, t) {
			for (i = 1; i <= n; i++) s[i] = a[i]
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (s[j] < s[i]) { t = s[i]; s[i] = s[j]; s[j] = t }
			return n % 2 ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2
		}
		$1 == op { k = $2; n[k]++; t[k, n[k]] = $3; if (!(k in lo) || $3 < lo[k]) lo[k] = $3; if ($3 > hi[k]) hi[k] = $3
			if ($4 > rss[k]) rss[k] = $4 }
		END {
			for (i = 1; i <= n["qimg"]; i++) m[i] = t["qimg", i]
			mm = median(m, n["qimg"])
			q = sprintf("%.3f (%.3f-%.3f)", mm, lo["qimg"], hi["qimg"])
			if (n["virt"] > 0) {
				for (i = 1; i <= n["virt"]; i++) v[i] = t["virt", i]
				mv = median(v, n["virt"])
				l = sprintf("%.2f (%.2f-%.2f)", mv, lo["virt"], hi["virt"])
				printf "| %-24s | %-26s | %-26s | %8.0fx | %10.0f / %-11.0f |\n", name, l, q, mv / mm, rss["virt"] / 1024, rss["qimg"] / 1024
			} else {
				printf "| %-24s | %-26s | %-26s | %9s | %10s / %-11.0f |\n", name, "not run", q, "-", "-", rss["qimg"] / 1024
			}
		}' "$results"
done
echo
echo "raw samples: $results"
