package xfs

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// populate makes the same tree under root on any file system: hard
// links, a remote (long) symbolic link, attributes the kernel writes in
// every form (in the inode, leaf blocks, remote values), a file punched
// into hundreds of extents (a btree fork), unwritten and sparse ranges,
// devices, a socket, owners and nanosecond times. It runs on the host's
// file system (the reference) and on a mounted XFS.
func populate(t testing.TB, root string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	p := func(name string) string { return filepath.Join(root, name) }
	write := func(name string, data []byte) {
		must(os.MkdirAll(filepath.Dir(p(name)), 0o755))
		must(os.WriteFile(p(name), data, 0o644))
	}
	write("one", []byte("x"))
	write("dir/two", pattern(9000, 1))
	must(os.Link(p("one"), p("hard")))
	must(os.Link(p("one"), p("dir/hard2")))
	must(os.Symlink(strings.Repeat("a/", 500)+"x", p("remote-link")))
	must(os.Symlink(strings.Repeat("b", 1023), p("longest-link")))
	write("xattrs", []byte("attributes\n"))
	for _, x := range []struct {
		name  string
		value []byte
	}{
		{"user.small", []byte("v")},
		{"trusted.t", []byte("trusted value")},
		{"security.selinux", []byte("system_u:object_r:etc_t:s0\x00")},
		{"user.remote", pattern(10000, 9)},
	} {
		must(unix.Lsetxattr(p("xattrs"), x.name, x.value, 0))
	}
	must(os.Mkdir(p("manyattrs"), 0o750))
	for i := range 300 {
		must(unix.Lsetxattr(p("manyattrs"), fmt.Sprintf("user.attr-%03d", i), pattern(10+i, byte(i)), 0))
	}
	must(unix.Lsetxattr(p("remote-link"), "trusted.on-link", []byte("link attr"), 0))
	// Every other block of 2 MiB punched out: 256 extents.
	write("fragmented", pattern(2<<20, 4))
	f, err := os.OpenFile(p("fragmented"), os.O_RDWR, 0)
	must(err)
	for off := int64(4096); off < 2<<20; off += 8192 {
		must(unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, 4096))
	}
	must(f.Close())
	// Preallocated (unwritten) with one written piece in the middle.
	f, err = os.Create(p("prealloc"))
	must(err)
	must(unix.Fallocate(int(f.Fd()), 0, 0, 1<<20))
	_, err = f.WriteAt(pattern(5000, 5), 300000)
	must(err)
	must(f.Close())
	// Sparse: data at both ends of 16 MiB.
	f, err = os.Create(p("sparse"))
	must(err)
	_, err = f.Write(pattern(8192, 6))
	must(err)
	_, err = f.WriteAt(pattern(8192, 7), 16<<20-8192)
	must(err)
	must(f.Close())
	must(unix.Mknod(p("tty"), syscall.S_IFCHR|0o620, int(unix.Mkdev(4, 1))))
	must(unix.Mknod(p("disk"), syscall.S_IFBLK|0o660, int(unix.Mkdev(259, 70000))))
	must(unix.Mknod(p("sock"), syscall.S_IFSOCK|0o755, 0))
	must(unix.Mkfifo(p("fifo"), 0o600))
	must(os.Lchown(p("dir/two"), 1234, 5678))
	must(os.Lchown(p("remote-link"), 42, 43))
	must(os.Chmod(p("dir/two"), 0o7640))
	for i, name := range []string{"one", "dir/two", "xattrs", "dir", "sparse"} {
		tm := unixTime(1700000000+int64(i)*1000, int64(i)*111111111+1)
		must(os.Chtimes(p(name), tm, tm))
	}
}

// TestMounted builds v5 and v4 file systems through the kernel (a loop
// mount, as root), records what the kernel shows of every file, then
// unmounts and compares: type, permissions, owner, link count, size,
// modification time to the nanosecond, device numbers, contents, link
// targets, attributes, and hard links sharing an inode.
func TestMounted(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs as root: the loop mount is needed")
		}
		t.Skip("mounting needs root")
	}
	for name, opts := range map[string][]string{"v5": nil, "v5-1k": {"-b", "size=1024"}} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "fs.img")
			if err := os.WriteFile(img, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(img, 192<<20); err != nil {
				t.Fatal(err)
			}
			run(t, "mkfs.xfs", append(append([]string{"-q", "-f"}, opts...), img)...)
			mnt := filepath.Join(dir, "mnt")
			if err := os.Mkdir(mnt, 0o755); err != nil {
				t.Fatal(err)
			}
			run(t, "mount", "-o", "loop", img, mnt)
			mounted := true
			umount := func() {
				if mounted {
					mounted = false
					run(t, "umount", mnt)
				}
			}
			t.Cleanup(umount)
			populate(t, mnt)
			want := kernelView(t, mnt)
			umount()
			repairClean(t, img)
			fsys := openImage(t, img)
			compareWithKernel(t, fsys, want)
			if out := run(t, "xfs_db", "-r", "-c", "path /fragmented", "-c", "print core.format", img); !strings.Contains(out, "3 (btree)") {
				t.Errorf("fragmented is not a btree: %s", out)
			}
		})
	}
}

// seen is what the kernel shows of one file.
type seen struct {
	st     unix.Stat_t
	mode   fs.FileMode
	sum    [32]byte // of the contents
	size   int64
	link   string
	xattrs map[string]string
}

// kernelView records every file under root as the kernel shows it.
func kernelView(t *testing.T, root string) map[string]*seen {
	t.Helper()
	out := map[string]*seen{}
	err := filepath.WalkDir(root, func(hp string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, hp)
		s := &seen{}
		if err := unix.Lstat(hp, &s.st); err != nil {
			return err
		}
		fi, err := os.Lstat(hp)
		if err != nil {
			return err
		}
		s.mode, s.size = fi.Mode(), fi.Size()
		switch {
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(hp)
			if err != nil {
				return err
			}
			s.sum = sha256.Sum256(data)
		case fi.Mode()&fs.ModeSymlink != 0:
			s.link, _ = os.Readlink(hp)
		}
		if s.xattrs, err = hostXattrs(hp); err != nil {
			return err
		}
		out[rel] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func hostXattrs(hp string) (map[string]string, error) {
	out := map[string]string{}
	buf := make([]byte, 1<<16)
	n, err := unix.Llistxattr(hp, buf)
	if err != nil {
		return nil, err
	}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 1<<16)
		vn, err := unix.Lgetxattr(hp, name, v)
		if err != nil {
			return nil, err
		}
		out[name] = string(v[:vn])
	}
	return out, nil
}

// compareWithKernel checks the file system shows every file as the
// kernel did, and no other.
func compareWithKernel(t *testing.T, fsys *FS, want map[string]*seen) {
	t.Helper()
	inodes := map[uint64]bool{}
	n := 0
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		n++
		w, ok := want[p]
		if !ok {
			return fmt.Errorf("%s: the kernel did not show it", p)
		}
		fi, err := fsys.Lstat(p)
		if err != nil {
			return err
		}
		in := fi.Sys().(*Inode)
		if fi.Mode() != w.mode || d.Type() != w.mode.Type() || in.UID != w.st.Uid || in.GID != w.st.Gid ||
			uint64(in.Nlink) != uint64(w.st.Nlink) || in.Ino != w.st.Ino || fi.Size() != w.size {
			return fmt.Errorf("%s: %v %d:%d links %d inode %d size %d; kernel %v %d:%d links %d inode %d size %d", p,
				fi.Mode(), in.UID, in.GID, in.Nlink, in.Ino, fi.Size(), w.mode, w.st.Uid, w.st.Gid, w.st.Nlink, w.st.Ino, w.size)
		}
		inodes[in.Ino] = true
		for _, tm := range [][2]any{{in.Mtime, w.st.Mtim}, {in.Ctime, w.st.Ctim}} {
			ts := tm[1].(unix.Timespec)
			if !tm[0].(time.Time).Equal(time.Unix(ts.Sec, ts.Nsec)) {
				return fmt.Errorf("%s: time %v, kernel %v", p, tm[0], time.Unix(ts.Sec, ts.Nsec))
			}
		}
		if err := compareContents(fsys, p, w, in); err != nil {
			return err
		}
		return compareXattrs(fsys, p, w.xattrs)
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Fatalf("walked %d files, the kernel showed %d", n, len(want))
	}
	t.Logf("%d files, %d inodes compared", n, len(inodes))
}

func compareContents(fsys *FS, p string, w *seen, in *Inode) error {
	switch {
	case w.mode.IsRegular():
		got, err := fsys.ReadFile(p)
		if err != nil {
			return err
		}
		if sha256.Sum256(got) != w.sum {
			return fmt.Errorf("%s: contents differ", p)
		}
		// Reads at odd places and lengths, through Open.
		f, err := fsys.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		for _, off := range []int64{0, 1, 4095, 4096, 299999, int64(len(got)) - 3} {
			if off < 0 || off >= int64(len(got)) {
				continue
			}
			b := make([]byte, min(70000, int64(len(got))-off))
			if _, err := f.(io.ReaderAt).ReadAt(b, off); err != nil && err != io.EOF {
				return err
			}
			if !bytes.Equal(b, got[off:off+int64(len(b))]) {
				return fmt.Errorf("%s: ReadAt(%d) differs", p, off)
			}
		}
	case w.mode&fs.ModeSymlink != 0:
		got, err := fsys.ReadLink(p)
		if err != nil || got != w.link {
			return fmt.Errorf("%s: link %q, %v; kernel %q", p, got, err, w.link)
		}
	case w.mode&fs.ModeDevice != 0:
		if ma, mi := in.Rdev(); ma != unix.Major(w.st.Rdev) || mi != unix.Minor(w.st.Rdev) {
			return fmt.Errorf("%s: device %d:%d, kernel %d:%d", p, ma, mi, unix.Major(w.st.Rdev), unix.Minor(w.st.Rdev))
		}
	}
	return nil
}

func compareXattrs(fsys *FS, p string, want map[string]string) error {
	xs, err := fsys.Xattrs(p)
	if err != nil {
		return err
	}
	got := map[string]string{}
	for _, x := range xs {
		got[x.Name] = string(x.Value)
	}
	if len(got) != len(want) {
		return fmt.Errorf("%s: %d attributes, kernel %d", p, len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			return fmt.Errorf("%s: attribute %s differs", p, k)
		}
	}
	return nil
}

func unixTime(sec, nsec int64) time.Time { return time.Unix(sec, nsec) }
