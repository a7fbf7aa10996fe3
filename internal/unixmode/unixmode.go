package unixmode

import "io/fs"

// File type bits of st_mode.
const (
	TypeMask = 0o170000
	Socket   = 0o140000
	Symlink  = 0o120000
	Regular  = 0o100000
	Block    = 0o060000
	Dir      = 0o040000
	Char     = 0o020000
	FIFO     = 0o010000
)

// ToFileMode converts st_mode bits (type and permissions); an unknown
// type is fs.ModeIrregular.
func ToFileMode(v uint32) fs.FileMode {
	m := PermToFileMode(v)
	switch v & TypeMask {
	case Dir:
		m |= fs.ModeDir
	case Symlink:
		m |= fs.ModeSymlink
	case FIFO:
		m |= fs.ModeNamedPipe
	case Socket:
		m |= fs.ModeSocket
	case Char:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case Block:
		m |= fs.ModeDevice
	case Regular:
	default:
		m |= fs.ModeIrregular
	}
	return m
}

// FromFileMode is ToFileMode's inverse; a mode of no Unix type (an
// irregular file) is a regular file.
func FromFileMode(m fs.FileMode) uint32 {
	v := Perm(m)
	switch {
	case m.IsDir():
		v |= Dir
	case m&fs.ModeSymlink != 0:
		v |= Symlink
	case m&fs.ModeNamedPipe != 0:
		v |= FIFO
	case m&fs.ModeSocket != 0:
		v |= Socket
	case m&fs.ModeCharDevice != 0:
		v |= Char
	case m&fs.ModeDevice != 0:
		v |= Block
	default:
		v |= Regular
	}
	return v
}

// Perm is the permission, setuid, setgid and sticky bits (0o7777) of m.
func Perm(m fs.FileMode) uint32 {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

// PermToFileMode converts the 0o7777 bits of v, ignoring the type.
func PermToFileMode(v uint32) fs.FileMode {
	m := fs.FileMode(v & 0o777)
	if v&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if v&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if v&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}
