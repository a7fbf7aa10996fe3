# shellcheck shell=bash
# Sourced by the scripts that build cached test artefacts (guest-image.sh,
# boot-image.sh, installer-iso.sh): where the cache is, a key that changes
# whenever the building script or this file changes (so a changed recipe
# is rebuilt, never served stale), one build at a time, and the Debian
# mirror apt uses.

# cached_setup PREFIX sets script (the caller's path), key, cache
# (${QIMG_CACHE:-/var/cache/qimg}) and dir ($cache/PREFIX-$key).
cached_setup() {
	script=$(readlink -f "$0")
	key=$(cat "$script" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)
	cache=${QIMG_CACHE:-/var/cache/qimg}
	dir=$cache/$1-$key
}

# need_tools WHO TOOL... exits naming the first TOOL that is missing.
need_tools() {
	local who=$1 tool
	shift
	for tool in "$@"; do
		command -v "$tool" >/dev/null || {
			echo "$who: $tool is missing (run scripts/setup.sh)" >&2
			exit 1
		}
	done
}

# cached_lock takes the cache's lock on file descriptor 9: one build at a
# time, since builds share $cache/debs.
cached_lock() {
	mkdir -p "$cache/debs"
	exec 9>"$cache/.lock"
	flock 9
}

# debian_mirror prints $QIMG_DEBIAN_MIRROR, or the first http(s) URI apt
# uses for the main archive.
debian_mirror() {
	if [ -n "${QIMG_DEBIAN_MIRROR:-}" ]; then
		echo "$QIMG_DEBIAN_MIRROR"
		return
	fi
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f")
		[ -n "$uri" ] && { echo "$uri"; return; }
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		uri=$(awk '$1 == "deb" && $2 !~ /security/ && $2 ~ /^https?:/ { print $2; exit }' "$f")
		[ -n "$uri" ] && { echo "$uri"; return; }
	done
	echo http://deb.debian.org/debian
}
