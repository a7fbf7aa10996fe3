#!/usr/bin/env bash
# Times uploads to and downloads from the local Glance of
# scripts/devcloud.sh in one run: a bare curl PUT/GET (Glance's own limit),
# the openstack CLI (image create --file / image save) and qimg (upload /
# image save), with each tool's peak RSS (GNU time's %M).
#
#   scripts/bench-cloud.sh [WORKDIR]   SIZE_MIB=1024 ROUNDS=7 CLI_ROUNDS=3
#
# The input is a qcow2 holding SIZE_MIB of random data (incompressible,
# nothing sparse), in WORKDIR (default /dev/shm/qimg-bench-cloud) so the
# disk is not what is measured. Prints a Markdown table of medians, each
# tool's time as a multiple of curl's, and the highest peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/dev/shm/qimg-bench-cloud}
size_mib=${SIZE_MIB:-1024}
rounds=${ROUNDS:-7}
cli_rounds=${CLI_ROUNDS:-3}
mkdir -p "$work" bin
. scripts/lib/build-qimg.sh
build_qimg bin/qimg
qimg=$PWD/bin/qimg
bash scripts/devcloud.sh start >&2
eval "$(bash scripts/devcloud.sh env demo)"
src=$work/random.qcow2
if [ ! -f "$src" ]; then
	head -c "$((size_mib << 20))" /dev/urandom >"$work/random.raw"
	qemu-img convert -f raw -O qcow2 "$work/random.raw" "$src"
	rm -f "$work/random.raw"
fi
glance=http://127.0.0.1:9292

# timed NAME CMD...: runs CMD, appends "seconds rss_kib" to $work/NAME.
timed() {
	local name=$1
	shift
	local t0 t1
	t0=$(date +%s.%N)
	/usr/bin/time -o "$work/$name.rss" -f %M "$@" >/dev/null
	t1=$(date +%s.%N)
	echo "$(awk "BEGIN { print $t1 - $t0 }") $(tail -1 "$work/$name.rss")" >>"$work/$name"
}

# The tools take turns, round after round, so a burst of load elsewhere
# hits them alike; the table shows medians.
rm -f "$work"/{curl,cli,qimg}-{put,get}
token=$(openstack token issue -f value -c id)
for round in $(seq "$rounds"); do
	echo "round $round of $rounds" >&2
	id=$(curl -s -X POST -H "X-Auth-Token: $token" -H 'Content-Type: application/json' \
		-d '{"name":"bench-curl","disk_format":"qcow2","container_format":"bare"}' "$glance/v2/images" |
		/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
	timed curl-put curl -sf -T "$src" -H "X-Auth-Token: $token" -H 'Content-Type: application/octet-stream' "$glance/v2/images/$id/file"
	timed curl-get curl -sf -o "$work/back-curl" -H "X-Auth-Token: $token" "$glance/v2/images/$id/file"
	openstack image delete "$id"

	if [ "$round" -le "$cli_rounds" ]; then
		timed cli-put openstack image create --file "$src" --disk-format qcow2 --container-format bare bench-cli
		timed cli-get openstack image save --file "$work/back-cli" bench-cli
		openstack image delete bench-cli
	fi

	timed qimg-put "$qimg" upload -q "$src" --name bench-qimg
	timed qimg-get "$qimg" image save -q --file "$work/back-qimg" bench-qimg
	"$qimg" image delete bench-qimg
	cmp "$src" "$work/back-qimg"
	rm -f "$work"/back-*
done

# median FILE COLUMN: the median of a column of FILE; max FILE COLUMN.
median() { sort -n -k"$2" "$1" | awk -v c="$2" '{ v[NR] = $c } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maxof() { sort -n -k"$2" "$1" | tail -1 | awk -v c="$2" '{ print $c }'; }
base_put=$(median "$work/curl-put" 1)
base_get=$(median "$work/curl-get" 1)
row() { # label put get
	local ps gs
	ps=$(median "$work/$2" 1)
	gs=$(median "$work/$3" 1)
	printf '| %s | %.2f s | %.2fx | %.0f MiB | %.2f s | %.2fx | %.0f MiB |\n' "$1" \
		"$ps" "$(awk "BEGIN { print $ps / $base_put }")" "$(($(maxof "$work/$2" 2) / 1024))" \
		"$gs" "$(awk "BEGIN { print $gs / $base_get }")" "$(($(maxof "$work/$3" 2) / 1024))"
}
echo "| $size_mib MiB qcow2 of random data, medians of $rounds rounds ($cli_rounds for the CLI) | upload | vs curl | peak RSS | download | vs curl | peak RSS |"
echo "|---|---|---|---|---|---|---|"
row "curl (PUT / GET of /v2/images/ID/file)" curl-put curl-get
row "openstack CLI (image create --file / image save)" cli-put cli-get
row "qimg (upload / image save)" qimg-put qimg-get
