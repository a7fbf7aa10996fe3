// Package unixmode converts between Unix st_mode bits, as filesystems
// store them, and io/fs's FileMode: the one place that knows how the
// file types and the setuid, setgid and sticky bits map.
package unixmode
