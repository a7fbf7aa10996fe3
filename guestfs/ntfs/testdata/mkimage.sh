#!/bin/sh
# Makes tree.img.gz, the NTFS image the tests read (and fuzzbase.img.gz,
# see the end), with mkntfs and the
# ntfs-3g FUSE driver (run as root where /dev/fuse works; the tests only
# read the result, checked against ntfsls and ntfscat, so CI needs no
# FUSE). The tree holds what exercises the reader:
#   Windows/System32/config/  empty, for hives the tests copy in with ntfscp
#   Windows/System32/         1500 files: a directory index B+ tree of
#                             several levels of INDX records
#   big.bin                   2.4 MB of non-resident data
#   small.txt                 resident data; empty; sparse.bin (a hole)
#   Ünïcödé ☃/deep/er/leaf.txt  non-ASCII names, nesting
#   links/                    target.txt and 24 hard links with long names:
#                             their $FILE_NAMEs overflow the MFT record into
#                             extension records listed by an $ATTRIBUTE_LIST
set -eu
out=$(cd "$(dirname "$0")" && pwd)/tree.img
work=$(mktemp -d)
trap 'umount "$work/m" 2>/dev/null || true; rm -rf "$work"' EXIT
truncate -s 16M "$work/img"
mkntfs -q -F -f -c 4096 -L QIMGNTFS -U "$work/img" >/dev/null 2>&1
mkdir "$work/m"
ntfs-3g "$work/img" "$work/m"
m=$work/m
mkdir -p "$m/Windows/System32/config" "$m/Ünïcödé ☃/deep/er"
i=0
while [ $i -lt 1500 ]; do printf 'driver %d\n' $i >"$m/Windows/System32/drv$i.dll"; i=$((i+1)); done
j=0
while [ $j -lt 300 ]; do printf 'block %05d' $j; head -c 8181 /dev/zero | tr '\0' 'x'; j=$((j+1)); done >"$m/big.bin"
printf 'small resident file\n' >"$m/small.txt"
: >"$m/empty"
truncate -s 1M "$m/sparse.bin"
printf 'end\n' >>"$m/sparse.bin"
printf 'leaf\n' >"$m/Ünïcödé ☃/deep/er/leaf.txt"
mkdir "$m/links"
seq 1 20000 >"$m/links/target.txt"
long=$(printf 'x%.0s' $(seq 1 100))
i=1
while [ $i -le 24 ]; do ln "$m/links/target.txt" "$m/links/link-$i-$long"; i=$((i+1)); done
umount "$m"
cp "$work/img" "$out"
gzip -9 -f "$out"

# fuzzbase.img.gz, the 2 MiB volume FuzzOpen patches: 512-byte clusters,
# 41 files in the root (an index with INDX records), one of 8 KiB.
base=$(dirname "$out")/fuzzbase.img
truncate -s 2M "$work/base"
mkntfs -q -F -f -c 512 -L FUZZ "$work/base" >/dev/null 2>&1
printf 'hello\n' >"$work/h.txt"
i=1
while [ $i -le 40 ]; do ntfscp -q "$work/base" "$work/h.txt" "file$i.txt"; i=$((i+1)); done
seq 1 2000 | head -c 8192 >"$work/big.txt"
ntfscp -q "$work/base" "$work/big.txt" big.txt
cp "$work/base" "$base"
gzip -9 -f "$base"
