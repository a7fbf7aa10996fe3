package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// preallocateRaw reserves (falloc) or writes (full) the whole raw file.
func preallocateRaw(f *os.File, size int64, mode string) error {
	if size == 0 {
		return nil
	}
	if mode == "falloc" {
		if err := unix.Fallocate(int(f.Fd()), 0, 0, size); err == nil {
			return nil
		}
	}
	buf := make([]byte, min(size, 1<<20))
	for off := int64(0); off < size; {
		n := min(int64(len(buf)), size-off)
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			return err
		}
		off += n
	}
	return f.Sync()
}
