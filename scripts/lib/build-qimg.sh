# shellcheck shell=bash
# Sourced by the scripts that build bin/qimg (setup.sh, the bench scripts,
# debian-install.sh), from the repository's root.

# build_qimg OUT builds cmd/qimg (static) into OUT and rewrites the file in
# 4 MiB writes. The linker writes its output through a memory mapping,
# which leaves the file in the page cache as 4 KiB pages: every exec then
# maps the binary's code page by page. Written in large writes, the same
# bytes are cached in 2 MiB folios that exec maps whole, one page fault
# per 2 MiB: qimg info and --version take about 80 fewer page faults and
# 15% less CPU time (docs/benchmarks.md). The gain lasts while the file
# stays in the page cache: paged back in from disk by exec (after a
# reboot) it is cached in 4 KiB pages again.
# The file is renamed into place, so a running OUT is not disturbed.
build_qimg() {
	local out=$1
	CGO_ENABLED=0 go build -o "$out.link" ./cmd/qimg &&
		dd if="$out.link" of="$out.new" bs=4M status=none &&
		chmod 755 "$out.new" &&
		mv -f "$out.new" "$out" || return
	rm -f "$out.link"
}
