#!/usr/bin/env bash
# Times `qimg convert` against `qemu-img convert` on the same inputs in one
# run, alternating the two tools round by round, and prints a table of
# medians, min-max, ratios, peak RSS and output sizes. A second section
# times the guest commands against debugfs (see "guest" below).
#
#   scripts/bench.sh [WORKDIR]       ROUNDS=3 SIZE_MIB=2048 OUT_DIR=WORKDIR
#                                    SECTIONS="convert guest small"
#
# qemu-img runs at its fastest settings, QEMU_FLAGS="-m 8 -W" (8 parallel
# coroutines, out-of-order writes); qimg runs with its defaults.
# OPS=REGEX keeps only the convert rows whose name matches (bash =~),
# e.g. OPS='^(raw -> qcow2|qcow2 -> raw)$'.
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
#
# guest: `qimg copy-out IMAGE /usr DIR` against `debugfs -R 'rdump /usr
# DIR'` on the raw filesystem, and `qimg cat` against `debugfs -R cat`, in
# GUEST_ROUNDS rounds (5). The image is an ext4 filesystem holding a /usr
# of GUEST_FILES (40000) paths sampled evenly from the host's /usr (less
# /usr/local), made once and kept in WORKDIR/guest-KEY, KEY a hash of the
# recipe; qimg reads it both as the bare filesystem (what debugfs reads)
# and as the second partition of an MBR disk in a qcow2.
#
# small: `info`, `check`, `map --output=json` and start-up alone (--version), qimg
# against qemu-img on a 4 GiB qcow2 of the convert input, SMALL_RUNS (41)
# runs each (see bench_small). Both binaries (and qemu-img's libraries)
# are first dropped from the page cache so both are paged in by exec
# alike; SMALL_EVICT=0 keeps them as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/qimg-bench}
rounds=${ROUNDS:-3}
size_mib=${SIZE_MIB:-2048}
out_dir=${OUT_DIR:-$work}
sections=${SECTIONS:-convert guest small}
qemu_flags=${QEMU_FLAGS--m 8 -W}
mkdir -p "$work" bin
. scripts/lib/build-qimg.sh
build_qimg bin/qimg
qimg=$PWD/bin/qimg

bench_convert() {
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
		[ -s "$work/luks.qcow2" ] || qemu-img convert --object "$secret" -f raw -O qcow2 -o "$luks_opts" "$disk" "$work/luks.qcow2"
		return 0
	}
	# Encrypted rows: LUKS (AES-256-XTS) with a short PBKDF2 time, so that
	# they time the data path and not the key derivation.
	secret=secret,id=sec0,data=bench-password
	luks_opts=encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10
	make_input

	# name|input|runs per round|arguments after "convert"; an input given
	# with --image-opts is opened with the key.
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
		"qcow2 -> qcow2|plain.qcow2|3|-f qcow2 -O qcow2"
		"qcow2 zlib -> raw|zlib.qcow2|1|-f qcow2 -O raw"
		"qcow2 zstd -> raw|zstd.qcow2|1|-f qcow2 -O raw"
		"vmdk stream -> qcow2|stream.vmdk|1|-f vmdk -O qcow2"
		"raw -> vmdk stream|disk.raw|1|-f raw -O vmdk -o subformat=streamOptimized"
		"raw -> vhd dynamic|disk.raw|3|-f raw -O vpc"
		"raw -> qcow2 luks|disk.raw|1|--object $secret -f raw -O qcow2 -o $luks_opts"
		"qcow2 luks -> raw|luks.qcow2|1|--object $secret -O raw --image-opts"
	)

	if [ -n "${OPS:-}" ]; then
		local kept=() op
		for op in "${ops[@]}"; do
			if [[ ${op%%|*} =~ $OPS ]]; then kept+=("$op"); fi
		done
		ops=("${kept[@]}")
	fi

	results=$work/results.txt
	: >"$results"
	run() { # tool op-index round
		local tool=$1 name input args out bin src
		IFS='|' read -r name input _ args <<<"${ops[$2]}"
		src=$work/$input
		case " $args " in *" --image-opts "*) src="driver=qcow2,file.filename=$src,encrypt.key-secret=sec0" ;; esac
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
		/usr/bin/time -f "%e %M" -o "$work/time.$tool" "$bin" convert $flags $args "$src" "$out"
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
}

guest_files=${GUEST_FILES:-40000}
guest_rounds=${GUEST_ROUNDS:-5}

# make_guest builds, in $1, fs.raw: an ext4 filesystem whose /usr holds
# $guest_files paths taken evenly through the sorted list of the host's
# /usr (every k-th one, so a mix of binaries, libraries, headers and
# docs; tar makes the parents of a path left out), and disk.qcow2: an MBR
# disk with a small first partition and fs.raw as the second.
make_guest() {
	local dir=$1 tree=$1/tree
	echo "building a ${guest_files}-path /usr image in $dir ..." >&2
	rm -rf "$tree" && mkdir -p "$tree"
	find /usr -xdev -path /usr/local -prune -o -print | LC_ALL=C sort >"$dir/all"
	awk -v n="$guest_files" -v total="$(wc -l <"$dir/all")" \
		'int(NR * n / total) != int((NR - 1) * n / total)' "$dir/all" >"$dir/list"
	tar -C / --no-recursion -T "$dir/list" -cf - 2>/dev/null | tar -C "$tree" -xf -
	local mib bytes
	mib=$(du -sm "$tree" | cut -f1)
	truncate -s $((mib * 5 / 4 + 128))M "$dir/fs.raw.tmp"
	mkfs.ext4 -q -F -d "$tree" "$dir/fs.raw.tmp"
	bytes=$(stat -c %s "$dir/fs.raw.tmp")
	truncate -s $((bytes + 2 * 1048576)) "$dir/disk.raw"
	printf 'label: dos\nstart=2048, size=1024, type=83\nstart=4096, size=%d, type=83\n' $((bytes / 512)) | sfdisk -q "$dir/disk.raw"
	dd if="$dir/fs.raw.tmp" of="$dir/disk.raw" bs=1M seek=2 conv=notrunc,sparse status=none
	qemu-img convert -f raw -O qcow2 "$dir/disk.raw" "$dir/disk.qcow2"
	rm -rf "$tree" "$dir/disk.raw" "$dir/all"
	mv "$dir/fs.raw.tmp" "$dir/fs.raw"
}

# grun times one guest run: tool, row, then the command. The output
# directory is emptied first, and the inputs read, outside the timing.
grun() {
	local tool=$1 row=$2
	shift 2
	rm -rf "$gout" && mkdir -p "$gout"
	sync
	cat "$gdir/fs.raw" "$gdir/disk.qcow2" >/dev/null
	/usr/bin/time -f "%e %M %U %S" -o "$work/time.guest" "$@" >/dev/null 2>"$work/stderr.guest" ||
		{ cat "$work/stderr.guest" >&2; exit 1; }
	read -r secs rss user sys <"$work/time.guest"
	echo "$row|$tool|$secs|$rss|$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')" >>"$gresults"
}

# gtable prints one row: qimg's runs of row $1 against debugfs's of row
# $2 (debugfs reads no qcow2: the qcow2 row is set against the raw one).
# Besides the elapsed times, the median CPU time (user + system) of each
# tool, which other load on the machine disturbs less.
gtable() {
	awk -F'|' -v row="$1" -v ref="$2" -v name="$3" '
		function median(a, n,   s, i, j, t) {
			for (i = 1; i <= n; i++) s[i] = a[i]
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (s[j] < s[i]) { t = s[i]; s[i] = s[j]; s[j] = t }
			return n % 2 ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2
		}
		function add(k, v, r, c) { n[k]++; t[k, n[k]] = v; cpu[k, n[k]] = c; if (!(k in lo) || v < lo[k]) lo[k] = v; if (v > hi[k]) hi[k] = v; if (r > rss[k]) rss[k] = r }
		$1 == ref && $2 == "debugfs" { add("d", $3, $4, $5) }
		$1 == row && $2 == "qimg" { add("q", $3, $4, $5) }
		END {
			for (i = 1; i <= n["d"]; i++) { d[i] = t["d", i]; dc[i] = cpu["d", i] }
			for (i = 1; i <= n["q"]; i++) { q[i] = t["q", i]; qc[i] = cpu["q", i] }
			md = median(d, n["d"]); mq = median(q, n["q"])
			mdc = median(dc, n["d"]); mqc = median(qc, n["q"])
			printf "| %-30s | %6.2f (%.2f-%.2f) | %6.2f (%.2f-%.2f) | %6.2f | %5.2f / %-5.2f | %6.2f | %5.1f / %-5.1f |\n",
				name, md, lo["d"], hi["d"], mq, lo["q"], hi["q"], (md > 0 ? mq / md : 0),
				mdc, mqc, (mdc > 0 ? mqc / mdc : 0), rss["d"] / 1024, rss["q"] / 1024
		}' "$gresults"
}

bench_guest() {
	local key
	key=$(printf '%s\n%s\n' "$(declare -f make_guest)" "$guest_files" | sha256sum | cut -c1-12)
	gdir=$work/guest-$key
	mkdir -p "$gdir"
	[ -s "$gdir/fs.raw" ] || make_guest "$gdir"
	gout=$out_dir/guest-out
	gresults=$work/guest-results.txt
	: >"$gresults"
	# The largest file of /usr/bin, and the one closest to 2 KiB.
	local ls big small size
	ls=$(debugfs -R 'ls -p /usr/bin' "$gdir/fs.raw" 2>/dev/null)
	big=/usr/bin/$(awk -F/ '$3 ~ /^10/ && $7 > s { s = $7; n = $6 } END { print n }' <<<"$ls")
	small=/usr/bin/$(awk -F/ '$3 ~ /^10/ && $7 > 0 { d = ($7 - 2048) ^ 2; if (n == "" || d < m) { m = d; n = $6 } } END { print n }' <<<"$ls")
	size=$(awk -F/ -v n="${big#/usr/bin/}" '$6 == n { print int($7 / 1048576); exit }' <<<"$ls")
	for ((r = 0; r < guest_rounds; r++)); do
		local order=(debugfs qimg)
		if ((r % 2)); then order=(qimg debugfs); fi
		for t in "${order[@]}"; do
			if [ "$t" = debugfs ]; then
				grun debugfs 0 debugfs -R "rdump /usr $gout" "$gdir/fs.raw"
				for k in 1 2 3; do grun debugfs 2 debugfs -R "cat $big" "$gdir/fs.raw"; done
				for k in 1 2 3; do grun debugfs 3 debugfs -R "cat $small" "$gdir/fs.raw"; done
			else
				grun qimg 0 "$qimg" copy-out -f raw "$gdir/fs.raw" /usr "$gout"
				grun qimg 1 "$qimg" copy-out "$gdir/disk.qcow2" /usr "$gout"
				for k in 1 2 3; do grun qimg 2 "$qimg" cat -f raw "$gdir/fs.raw" "$big"; done
				for k in 1 2 3; do grun qimg 3 "$qimg" cat -f raw "$gdir/fs.raw" "$small"; done
			fi
		done
		echo "guest round $((r + 1))/$guest_rounds done" >&2
	done
	rm -rf "$gout"
	echo
	echo "qimg $(git describe --always --dirty 2>/dev/null) vs $(debugfs -V 2>&1 | head -1), $(nproc) cores, /usr of $(wc -l <"$gdir/list") paths ($(du -sm --apparent-size "$gdir/fs.raw" | cut -f1) MiB filesystem), $guest_rounds rounds (cat rows: 3 runs per round); debugfs reads the raw filesystem in every row"
	echo
	printf '| %-30s | %-20s | %-20s | %-6s | %-13s | %-6s | %-13s |\n' operation "debugfs s (min-max)" "qimg s (min-max)" ratio "CPU s d/qimg" "ratio" "RSS MiB d/qimg"
	printf '|%s|%s|%s|%s|%s|%s|%s|\n' "--------------------------------" "----------------------" "----------------------" "--------" "---------------" "--------" "---------------"
	gtable 0 0 "copy-out /usr, raw filesystem"
	gtable 1 0 "copy-out /usr, qcow2 disk"
	gtable 2 2 "cat $(basename "$big") ($size MiB)"
	gtable 3 3 "cat $(basename "$small")"
}

small_runs=${SMALL_RUNS:-41}

# times_ms prints the CPU time (user + system, ms) in a file written by
# bash's `times`: its second line is what the shell's finished children
# used so far.
times_ms() {
	awk 'NR == 2 {
		ms = 0
		for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); ms += (p[1] * 60 + p[2]) * 1000 }
		printf "%.1f", ms }' "$1"
}

# small: qemu-img and qimg's quick commands (info, check, map) on a 4 GiB
# qcow2 made from the convert input (about 1 GiB of data), SMALL_RUNS runs
# each, alternating the tools run by run. Elapsed times are taken around
# the bare command (EPOCHREALTIME, microseconds); CPU time is what `times`
# adds up for the child; peak RSS comes from one extra run under GNU time.
bench_small() {
	local img=$work/small.qcow2
	if [ ! -s "$img" ]; then
		[ -s "$work/disk.raw" ] || { echo "small: run the convert section once first (it builds $work/disk.raw)" >&2; exit 2; }
		qemu-img convert -f raw -O qcow2 "$work/disk.raw" "$img.tmp"
		qemu-img resize -q -f qcow2 "$img.tmp" 4G
		mv "$img.tmp" "$img"
	fi
	cat "$img" >/dev/null
	# Both programs start from the same page-cache state: their files
	# (qemu-img's shared libraries too) are dropped from the cache, so
	# that the first run pages each in through exec, as after a reboot.
	# How a binary was written decides how it sits in the cache (see
	# scripts/lib/build-qimg.sh); this keeps that out of the comparison.
	if [ "${SMALL_EVICT:-1}" = 1 ]; then
		local f
		for f in "$qimg" "$(command -v qemu-img)" $(ldd "$(command -v qemu-img)" | awk '$3 ~ /^\// {print $3}'); do
			dd if="$f" iflag=nocache count=0 status=none 2>/dev/null || true
		done
	fi
	local rows=("info|info $img" "check|check $img" "map --output=json|map --output=json $img" "start-up (--version)|--version")
	local sresults=$work/small-results.txt
	: >"$sresults"
	local i k tool bin args start end cpu0 cpu1
	for ((k = 0; k < small_runs; k++)); do
		for i in "${!rows[@]}"; do
			IFS='|' read -r _ args <<<"${rows[$i]}"
			for tool in qemu-img qimg; do
				if (((k + i) % 2)); then tool=$([ "$tool" = qimg ] && echo qemu-img || echo qimg); fi
				bin=qemu-img
				[ "$tool" = qimg ] && bin=$qimg
				# `times` is a builtin: nothing else runs between the two
				# records but the command.
				times >"$work/times.0"
				start=$EPOCHREALTIME
				# shellcheck disable=SC2086
				"$bin" $args >/dev/null 2>&1 || true
				end=$EPOCHREALTIME
				times >"$work/times.1"
				cpu0=$(times_ms "$work/times.0")
				cpu1=$(times_ms "$work/times.1")
				echo "$i|$tool|$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", (e - s) * 1000 }')|$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.1f", b - a }')" >>"$sresults"
			done
		done
	done
	for i in "${!rows[@]}"; do
		IFS='|' read -r _ args <<<"${rows[$i]}"
		for tool in qemu-img qimg; do
			bin=qemu-img
			[ "$tool" = qimg ] && bin=$qimg
			# shellcheck disable=SC2086
			/usr/bin/time -f "%M" -o "$work/time.small" "$bin" $args >/dev/null 2>&1 || true
			echo "$i|$tool-rss|$(cat "$work/time.small")" >>"$sresults"
		done
	done
	echo
	echo "qimg $(git describe --always --dirty 2>/dev/null) vs $(qemu-img --version | head -1), $(nproc) cores, 4 GiB qcow2 with $(qemu-img info --output=json "$img" | awk -F': ' '/"actual-size"/ { printf "%.2f", $2 / 1073741824 }') GiB in the file, $small_runs runs per tool (ms; CPU = user + system of the child)"
	echo
	printf '| %-20s | %-24s | %-24s | %-6s | %-14s | %-6s | %-14s |\n' command "qemu-img ms (min-max)" "qimg ms (min-max)" ratio "CPU ms q/qimg" ratio "RSS MiB q/qimg"
	printf '|%s|%s|%s|%s|%s|%s|%s|\n' "----------------------" "--------------------------" "--------------------------" "--------" "----------------" "--------" "----------------"
	for i in "${!rows[@]}"; do
		IFS='|' read -r name _ <<<"${rows[$i]}"
		awk -F'|' -v row="$i" -v name="$name" '
			function median(a, n,   s, i, j, t) {
				for (i = 1; i <= n; i++) s[i] = a[i]
				for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (s[j] < s[i]) { t = s[i]; s[i] = s[j]; s[j] = t }
				return n % 2 ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2
			}
			$1 == row && ($2 == "qemu-img" || $2 == "qimg") { k = $2; n[k]++; t[k, n[k]] = $3; c[k, n[k]] = $4
				if (!(k in lo) || $3 < lo[k]) lo[k] = $3; if ($3 > hi[k]) hi[k] = $3 }
			$1 == row && $2 ~ /-rss$/ { sub("-rss", "", $2); rss[$2] = $3 }
			END {
				for (i = 1; i <= n["qemu-img"]; i++) { q[i] = t["qemu-img", i]; qc[i] = c["qemu-img", i] }
				for (i = 1; i <= n["qimg"]; i++) { m[i] = t["qimg", i]; mc[i] = c["qimg", i] }
				mq = median(q, n["qemu-img"]); mm = median(m, n["qimg"]); cq = median(qc, n["qemu-img"]); cm = median(mc, n["qimg"])
				printf "| %-20s | %-24s | %-24s | %6.2f | %5.1f / %-6.1f | %6.2f | %5.1f / %-6.1f |\n",
					name, sprintf("%.1f (%.1f-%.1f)", mq, lo["qemu-img"], hi["qemu-img"]), sprintf("%.1f (%.1f-%.1f)", mm, lo["qimg"], hi["qimg"]), mm / mq,
					cq, cm, (cq > 0 ? cm / cq : 0), rss["qemu-img"] / 1024, rss["qimg"] / 1024
			}' "$sresults"
	done
}

for s in $sections; do
	case $s in
	convert) bench_convert ;;
	guest) bench_guest ;;
	small) bench_small ;;
	*) echo "unknown section $s (convert, guest, small)" >&2 && exit 2 ;;
	esac
done
