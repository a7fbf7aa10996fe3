package build

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// A cpioEntry is one member of a newc archive: a directory (Data nil and
// Mode a directory) or a regular file.
type cpioEntry struct {
	Name string // relative, slash-separated, without "." or ".."
	Mode fs.FileMode
	Data []byte
}

// newc's magic, the file type bits of its mode field, and the name of the
// member that ends an archive.
const (
	newcMagic   = "070701"
	newcRegular = 0o100000
	newcDir     = 0o040000
	newcTrailer = "TRAILER!!!"
)

// writeNewc writes entries as a cpio archive in the "new ASCII" format
// (newc, as cpio -H newc writes it and the kernel's initramfs unpacker
// reads it), owned by root, time stamp 0, ending with the trailer. Parent
// directories must come before what they hold; the kernel creates
// nothing on its own.
func writeNewc(w io.Writer, entries []cpioEntry) error {
	for i, e := range entries {
		if err := checkCPIOName(e.Name); err != nil {
			return err
		}
		mode := uint32(e.Mode.Perm()) | newcRegular
		if e.Mode.IsDir() {
			mode = uint32(e.Mode.Perm()) | newcDir
			if e.Data != nil {
				return fmt.Errorf("cpio: directory %s with data", e.Name)
			}
		}
		if err := writeNewcMember(w, uint32(i+1), mode, e.Name, e.Data); err != nil {
			return err
		}
	}
	return writeNewcMember(w, 0, 0, newcTrailer, nil)
}

// writeNewcMember writes one header, the name and the data, each padded to
// four bytes as newc requires.
func writeNewcMember(w io.Writer, ino, mode uint32, name string, data []byte) error {
	if uint64(len(data)) > 0xffffffff {
		return fmt.Errorf("cpio: %s is larger than 4 GiB", name)
	}
	nlink := 1
	if mode&newcDir != 0 {
		nlink = 2
	}
	// ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor
	// rdevminor namesize check, eight hex digits each.
	hdr := fmt.Sprintf("%s%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		newcMagic, ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name)+1, 0)
	var b strings.Builder
	b.WriteString(hdr)
	b.WriteString(name)
	b.WriteByte(0)
	b.WriteString(pad4(b.Len()))
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	_, err := io.WriteString(w, pad4(len(data)))
	return err
}

// pad4 is the zeros that bring n to a multiple of four.
func pad4(n int) string { return strings.Repeat("\x00", (4-n%4)%4) }

// checkCPIOName refuses names the kernel would place outside the archive's
// root or that are not clean relative paths.
func checkCPIOName(name string) error {
	if name == "" || name == "." || name == newcTrailer || path.Clean(name) != name || !fs.ValidPath(name) || strings.ContainsRune(name, 0) {
		return fmt.Errorf("cpio: %q is not a clean relative path", name)
	}
	return nil
}
