package unixmode_test

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/qimg/qimg/internal/unixmode"
)

// The kernel's st_mode of real files converts to what os.Lstat reports.
func TestMatchesTheKernel(t *testing.T) {
	dir := t.TempDir()
	paths := map[string]func(string) error{
		"file":   func(p string) error { return os.WriteFile(p, nil, 0o4751) },
		"dir":    func(p string) error { return os.Mkdir(p, 0o1777) },
		"link":   func(p string) error { return os.Symlink("file", p) },
		"fifo":   func(p string) error { return syscall.Mkfifo(p, 0o2640) },
		"setgid": func(p string) error { return os.WriteFile(p, nil, 0o644) },
	}
	for name, mk := range paths {
		p := filepath.Join(dir, name)
		if err := mk(p); err != nil {
			t.Fatal(err)
		}
		if name == "file" || name == "fifo" || name == "dir" {
			os.Chmod(p, map[string]fs.FileMode{"file": 0o751 | fs.ModeSetuid, "fifo": 0o640 | fs.ModeSetgid, "dir": 0o777 | fs.ModeSticky}[name])
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := unixmode.ToFileMode(st.Mode); got != fi.Mode() {
			t.Errorf("%s: ToFileMode(%o) = %v, os.Lstat says %v", name, st.Mode, got, fi.Mode())
		}
		if got := unixmode.FromFileMode(fi.Mode()); got != st.Mode {
			t.Errorf("%s: FromFileMode(%v) = %o, the kernel says %o", name, fi.Mode(), got, st.Mode)
		}
	}
}

func Example() {
	m := unixmode.ToFileMode(0o104755)
	fmt.Println(m, fmt.Sprintf("%o", unixmode.FromFileMode(m)), fmt.Sprintf("%o", unixmode.Perm(m)))
	// Output: urwxr-xr-x 104755 4755
}
