#!/usr/bin/env bash
# Times `qimg convert` against `qemu-img convert` on the same inputs in one
# run, alternating the two tools round by round, and prints a table of
# medians, min-max, ratios, peak RSS and output sizes.
#
#   scripts/bench.sh [WORKDIR]       ROUNDS=3 SIZE_MIB=2048 OUT_DIR=WORKDIR
#
# qemu-img runs at its fastest settings, QEMU_FLAGS="-m 8 -W" (8 parallel
# coroutines, out-of-order writes); qimg runs with its defaults.
# BASELINE=/path/to/older/qimg also times an older qimg build in the same
# rounds and adds its median and the ratio qimg/baseline to each row, to
# show that a change made nothing slower.
#
# OUT_DIR=/dev/shm keeps the outputs in memory, which takes the disk's
# write-back noise out of the comparison on small cloud VMs.
#
# The input is a disk-like raw image: an ext4 file system filled from
# /usr/share and /usr/bin (text, binaries, compressed files), a region of
# random data, and free space (zeros and holes). Page cache stays warm for
# both tools alike. Needs qemu-utils, e2fsprogs and GNU time (setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/qimg-bench}
rounds=${ROUNDS:-3}
size_mib=${SIZE_MIB:-2048}
out_dir=${OUT_DIR:-$work}
qemu_flags=${QEMU_FLAGS--m 8 -W}
mkdir -p "$work" bin
go build -o bin/qimg ./cmd/qimg
qimg=$PWD/bin/qimg

make_input() {
	local disk=$work/disk.raw
	derived
	[ -s "$disk" ] && return
	echo "building a ${size_mib} MiB disk-like input in $work ..." >&2
	local tree=$work/tree
	rm -rf "$tree" && mkdir -p "$tree"
	cp -a /usr/share "$tree/share" 2>/dev/null || true
	cp -a /usr/bin "$tree/bin" 2>/dev/null || true
	truncate -s "${size_mib}M" "$disk.tmp"
	mkfs.ext4 -q -F -d "$tree" "$disk.tmp"
	# Incompressible data (media, already-compressed archives).
	dd if=/dev/urandom of="$disk.tmp" bs=1M count=128 seek=$((size_mib * 3 / 4)) conv=notrunc status=none
	mv "$disk.tmp" "$disk"
	rm -rf "$tree"
	derived
}

# derived makes the other inputs from disk.raw with qemu-img, each once.
derived() {
	local disk=$work/disk.raw
	[ -s "$disk" ] || return 0
	[ -s "$work/plain.qcow2" ] || qemu-img convert -f raw -O qcow2 "$disk" "$work/plain.qcow2"
	[ -s "$work/zlib.qcow2" ] || qemu-img convert -f raw -O qcow2 -c "$disk" "$work/zlib.qcow2"
	[ -s "$work/zstd.qcow2" ] || qemu-img convert -f raw -O qcow2 -c -o compression_type=zstd "$disk" "$work/zstd.qcow2"
	[ -s "$work/stream.vmdk" ] || qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$disk" "$work/stream.vmdk"
	return 0
}
make_input

# name|input|runs per round|arguments after "convert"
#
# The sub-second rows run three times per round: on a small VM single runs
# of half a second vary with what the host does (free page reporting hands
# back pages that are slow to touch again), whichever tool it is, and only
# more samples tell that lottery from the tools.
ops=(
	"raw -> qcow2|disk.raw|3|-f raw -O qcow2"
	"raw -> qcow2 -c zlib|disk.raw|1|-f raw -O qcow2 -c"
	"raw -> qcow2 -c zstd|disk.raw|1|-f raw -O qcow2 -c -o compression_type=zstd"
	"qcow2 -> raw|plain.qcow2|3|-f qcow2 -O raw"
	"qcow2 zlib -> raw|zlib.qcow2|1|-f qcow2 -O raw"
	"qcow2 zstd -> raw|zstd.qcow2|1|-f qcow2 -O raw"
	"vmdk stream -> qcow2|stream.vmdk|1|-f vmdk -O qcow2"
	"raw -> vmdk stream|disk.raw|1|-f raw -O vmdk -o subformat=streamOptimized"
	"raw -> vhd dynamic|disk.raw|3|-f raw -O vpc"
)

results=$work/results.txt
: >"$results"
run() { # tool op-index round
	local tool=$1 name input args out bin
	IFS='|' read -r name input _ args <<<"${ops[$2]}"
	out=$out_dir/out.$tool
	rm -f "$out"
	bin=qemu-img
	local flags=$qemu_flags
	if [ "$tool" = qimg ]; then bin=$qimg flags=""; fi
	if [ "$tool" = base ]; then bin=$BASELINE flags=""; fi
	# shellcheck disable=SC2086
	sync # start each run with no dirty pages from the previous one
	# Read the input first: on a VM whose DAMON pages out memory left
	# cold for a minute, the first run of an operation would otherwise read
	# part of its input from disk.
	cat "$work/$input" >/dev/null
	/usr/bin/time -f "%e %M" -o "$work/time.$tool" "$bin" convert $flags $args "$work/$input" "$out"
	read -r secs rss <"$work/time.$tool"
	echo "$2|$tool|$secs|$rss|$(stat -c %s "$out")" >>"$results"
	rm -f "$out"
}
for ((r = 0; r < rounds; r++)); do
	for i in "${!ops[@]}"; do
		IFS='|' read -r _ _ runs _ <<<"${ops[$i]}"
		for ((k = 0; k < runs; k++)); do
			if (((r + k) % 2 == 0)); then run qemu-img "$i"; run qimg "$i"; else run qimg "$i"; run qemu-img "$i"; fi
			if [ -n "${BASELINE:-}" ]; then run base "$i"; fi
		done
	done
	echo "round $((r + 1))/$rounds done" >&2
done

echo
echo "qimg $(git describe --always --dirty 2>/dev/null) vs $(qemu-img --version | head -1) convert $qemu_flags, $(nproc) cores, ${size_mib} MiB input, $rounds rounds (sub-second rows: 3 runs per round)"
echo
base_head="" base_rule=""
if [ -n "${BASELINE:-}" ]; then base_head=" baseline s | qimg/baseline |" base_rule="------------|---------------|"; fi
printf '| %-22s | %-22s | %-22s | %-6s | %-17s | %-23s |%s\n' operation "qemu-img s (min-max)" "qimg s (min-max)" ratio "peak RSS MiB q/qimg" "output MiB q/qimg" "$base_head"
printf '|%s|%s|%s|%s|%s|%s|%s\n' "------------------------" "------------------------" "------------------------" "--------" "-------------------" "-------------------------" "$base_rule"
for i in "${!ops[@]}"; do
	IFS='|' read -r name _ _ _ <<<"${ops[$i]}"
	awk -F'|' -v op="$i" -v name="$name" -v base="${BASELINE:+1}" '
		function median(a, n,   s, i, j, t) {
			for (i = 1; i <= n; i++) s[i] = a[i]
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (s[j] < s[i]) { t = s[i]; s[i] = s[j]; s[j] = t }
			return n % 2 ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2
		}
		$1 == op { k = $2; n[k]++; t[k, n[k]] = $3; if (!(k in lo) || $3 < lo[k]) lo[k] = $3; if ($3 > hi[k]) hi[k] = $3
			if ($4 > rss[k]) rss[k] = $4; size[k] = $5 }
		END {
			for (i = 1; i <= n["qemu-img"]; i++) q[i] = t["qemu-img", i]
			for (i = 1; i <= n["qimg"]; i++) m[i] = t["qimg", i]
			mq = median(q, n["qemu-img"]); mm = median(m, n["qimg"])
			printf "| %-22s | %6.2f (%.2f-%.2f)%*s | %6.2f (%.2f-%.2f)%*s | %6.2f | %7.0f / %-7.0f | %9.1f / %-9.1f |",
				name, mq, lo["qemu-img"], hi["qemu-img"], 1, "", mm, lo["qimg"], hi["qimg"], 1, "", mm / mq,
				rss["qemu-img"] / 1024, rss["qimg"] / 1024, size["qemu-img"] / 1048576, size["qimg"] / 1048576
			if (base) {
				for (i = 1; i <= n["base"]; i++) b[i] = t["base", i]
				mb = median(b, n["base"])
				printf " %10.2f | %13.2f |", mb, mm / mb
			}
			printf "\n"
		}' "$results"
done
