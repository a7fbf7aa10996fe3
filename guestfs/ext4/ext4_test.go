package ext4

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/fstest"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/image"
)

// variants are the mkfs.ext4 option sets every test image is made with.
var variants = []struct {
	name string
	opts []string
}{
	{"defaults", nil}, // 1 KiB blocks at this size, from mke2fs.conf's "small"
	{"4k", []string{"-b", "4096"}},
	{"nocsum", []string{"-O", "^metadata_csum"}},
	{"no64bit", []string{"-O", "^64bit"}},
	{"inline", []string{"-O", "inline_data"}},
	{"ext2", []string{"-t", "ext2"}},
	{"ext2-128", []string{"-t", "ext2", "-I", "128", "-b", "4096"}},
	{"ext3", []string{"-t", "ext3"}},
	{"blockmap", []string{"-O", "^extent,^64bit"}},
	{"rootowner", []string{"-E", "root_owner=1234:5678"}},
	{"metabg", []string{"-O", "meta_bg,^resize_inode"}},
	{"bigalloc", []string{"-b", "4096", "-O", "bigalloc", "-C", "16384"}},
}

var (
	srcOnce sync.Once
	srcDir  string
)

// source builds the source tree once for all tests of the package.
func source(t *testing.T) string {
	need(t, "mkfs.ext4", "debugfs", "e2fsck")
	srcOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ext4-src")
		if err != nil {
			t.Fatal(err)
		}
		srcDir = dir
		tt := &tempT{TB: t, dir: dir}
		srcDir = buildTree(tt)
	})
	if srcDir == "" {
		t.Fatal("source tree not built")
	}
	return srcDir
}

// tempT gives buildTree a TempDir that outlives the first test using it
// (TestMain removes it).
type tempT struct {
	testing.TB
	dir string
}

func (t *tempT) TempDir() string { return t.dir }

func TestMain(m *testing.M) {
	if os.Getenv(crashEnv) != "" {
		crashChild() // never returns
	}
	code := m.Run()
	if srcDir != "" {
		os.RemoveAll(filepath.Dir(srcDir))
	}
	os.Exit(code)
}

func openImage(t *testing.T, img string) *FS {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := Open(f, st.Size(), img)
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

func TestVariants(t *testing.T) {
	src := source(t)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel() // mkfs -d of 3000 files takes a second
			img := mkfs(t, src, v.opts...)
			fsys := openImage(t, img)
			compareTree(t, fsys, src)
			compareDebugfs(t, fsys, img)
			if err := fstest.TestFS(fsys, "small", "nested/a/b/c/file", "dir3000/entry-with-a-longer-name-2999", "link-abs"); err != nil {
				t.Error(err)
			}
			if in := sys(t, fsys, "dir3000"); in.Flags&FlagIndex == 0 {
				t.Errorf("dir3000 has no htree index (flags 0x%x)", in.Flags)
			}
			if in := sys(t, fsys, "fragmented"); in.Flags&FlagExtents != 0 {
				if depth := binary.LittleEndian.Uint16(in.block[6:]); v.name == "defaults" && depth < 2 {
					t.Errorf("fragmented: extent tree of depth %d", depth)
				}
			}
			if v.name == "rootowner" {
				in := sys(t, fsys, ".")
				if in.UID != 1234 || in.GID != 5678 {
					t.Errorf("root owner %d:%d, want 1234:5678", in.UID, in.GID)
				}
			}
		})
	}
}

// TestQcow2 reads the file system through a compressed qcow2 image opened
// with format.Open: the reader needs only an io.ReaderAt.
func TestQcow2(t *testing.T) {
	need(t, "qemu-img")
	src := source(t)
	img := mkfs(t, src, "-b", "4096")
	q := filepath.Join(t.TempDir(), "fs.qcow2")
	run(t, "qemu-img", "convert", "-O", "qcow2", "-c", img, q)
	di, name, err := format.Open(q, format.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer di.Close()
	if name != "qcow2" {
		t.Fatalf("probed as %s", name)
	}
	fsys, err := Open(di, di.Size(), q)
	if err != nil {
		t.Fatal(err)
	}
	compareTree(t, fsys, src)
}

func sys(t *testing.T, fsys *FS, name string) *Inode {
	t.Helper()
	fi, err := fsys.Lstat(name)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*Inode)
}

func sum(t *testing.T, r io.Reader) [32]byte {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// compareTree walks the source tree and checks every name, type, mode,
// owner, size, link target and content against the file system.
func compareTree(t *testing.T, fsys *FS, src string) {
	inodes := map[uint64]uint32{} // host inode -> ext4 inode, for hard links
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		rel = filepath.ToSlash(rel)
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		fi, err := fsys.Lstat(rel)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		in := fi.Sys().(*Inode)
		hs := st.Sys().(*syscall.Stat_t)
		if fi.Mode() != st.Mode() {
			t.Errorf("%s: mode %v, want %v", rel, fi.Mode(), st.Mode())
		}
		if rel != "." && (in.UID != hs.Uid || in.GID != hs.Gid) {
			t.Errorf("%s: owner %d:%d, want %d:%d", rel, in.UID, in.GID, hs.Uid, hs.Gid)
		}
		if rel != "." && in.Mtime.Unix() != st.ModTime().Unix() { // lost+found changed the root
			t.Errorf("%s: mtime %v, want %v", rel, in.Mtime, st.ModTime())
		}
		if rel != "." && fi.Name() != filepath.Base(p) {
			t.Errorf("%s: name %q", rel, fi.Name())
		}
		if uint64(in.Links) != hs.Nlink && !st.IsDir() {
			t.Errorf("%s: %d links, want %d", rel, in.Links, hs.Nlink)
		}
		if prev, ok := inodes[hs.Ino]; ok && prev != in.Ino {
			t.Errorf("%s: hard link is inode %d, its twin %d", rel, in.Ino, prev)
		}
		inodes[hs.Ino] = in.Ino
		switch {
		case st.Mode().IsRegular():
			if fi.Size() != st.Size() {
				t.Errorf("%s: size %d, want %d", rel, fi.Size(), st.Size())
			}
			if rel == "huge" {
				compareHuge(t, fsys, p)
				return nil
			}
			want, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got, err := fs.ReadFile(fsys, rel)
			if err != nil {
				t.Errorf("%s: %v", rel, err)
			} else if sha256.Sum256(got) != sha256.Sum256(want) {
				t.Errorf("%s: content differs", rel)
			}
		case st.Mode()&fs.ModeSymlink != 0:
			want, _ := os.Readlink(p)
			got, err := fsys.ReadLink(rel)
			if err != nil || got != want {
				t.Errorf("%s: link %q, %v; want %q", rel, got, err, want)
			}
			// Following it must land where the host would land with the
			// tree as its root.
			dest := filepath.Join(filepath.Dir(p), want)
			if strings.HasPrefix(want, "/") {
				dest = filepath.Join(src, want)
			}
			hst, err := os.Stat(dest)
			if err != nil {
				return err
			}
			fst, err := fsys.Stat(rel)
			if err != nil {
				t.Errorf("%s: Stat through link: %v", rel, err)
			} else if fst.Mode() != hst.Mode() || !fst.IsDir() && fst.Size() != hst.Size() {
				t.Errorf("%s: through link %v %d, want %v %d", rel, fst.Mode(), fst.Size(), hst.Mode(), hst.Size())
			}
		case st.IsDir():
			hents, _ := os.ReadDir(p)
			fents, err := fsys.ReadDir(rel)
			if err != nil {
				t.Errorf("%s: %v", rel, err)
				return nil
			}
			var hn, fn []string
			for _, e := range hents {
				hn = append(hn, e.Name())
			}
			for _, e := range fents {
				if rel == "." && e.Name() == "lost+found" {
					continue
				}
				fn = append(fn, e.Name())
			}
			if !slices.Equal(hn, fn) {
				t.Errorf("%s: %d entries, want %d", rel, len(fn), len(hn))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// compareHuge checks the sparse file past 4 GiB where it has data, and a
// stretch of its hole, without reading all five gibibytes.
func compareHuge(t *testing.T, fsys *FS, p string) {
	h, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	f, err := fsys.Open("huge")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ra := f.(io.ReaderAt)
	for _, off := range []int64{0, 4096, 1 << 30, hugeDataOff - 100, hugeDataOff, hugeSize - 8192} {
		want := make([]byte, 16384)
		got := make([]byte, 16384)
		nw, _ := h.ReadAt(want, off)
		ng, err := ra.ReadAt(got, off)
		if ng != nw || !bytes.Equal(got[:ng], want[:nw]) || (ng < len(got) && err != io.EOF) {
			t.Errorf("huge at %d: %d bytes, %v; want %d", off, ng, err, nw)
		}
	}
}

var (
	debugfsField = regexp.MustCompile(`(?m)(Mode|User|Group|Size|Links|Flags|Blockcount):\s+(0x[0-9a-f]+|\d+)`)
	debugfsTime  = regexp.MustCompile(`(?m)^\s*(ctime|atime|mtime|crtime): 0x([0-9a-f]+)(?::([0-9a-f]+))?`)
	debugfsEA    = regexp.MustCompile(`(?m)^  (\S+) \((\d+)\)(?: = "(.*)")?`)
)

// compareDebugfs checks a few inodes field by field against debugfs stat,
// and their attributes against debugfs ea_list.
func compareDebugfs(t *testing.T, fsys *FS, img string) {
	for _, name := range []string{".", "small", "big", "sparse", "fragmented", "sixty", "fifo", "link-abs", "link-slow-rel", "dir3000", "nested"} {
		in := sys(t, fsys, name)
		out := run(t, "debugfs", "-R", "stat /"+strings.TrimPrefix(name, "."), img)
		want := map[string]uint64{}
		for _, m := range debugfsField.FindAllStringSubmatch(out, -1) {
			if _, seen := want[m[1]]; seen {
				continue // "Size" again in the fragment line
			}
			v, _ := strconv.ParseUint(m[2], 0, 64)
			if m[1] == "Mode" {
				v, _ = strconv.ParseUint(m[2], 8, 64)
			}
			want[m[1]] = v
		}
		got := map[string]uint64{
			"Mode": uint64(in.Mode & 0o7777), "User": uint64(in.UID), "Group": uint64(in.GID),
			"Size": in.Size, "Links": uint64(in.Links), "Flags": uint64(in.Flags), "Blockcount": in.Blocks,
		}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("%s: %s %d, debugfs says %d", name, k, got[k], w)
			}
		}
		times := map[string]int64{"ctime": in.Ctime.Unix(), "atime": in.Atime.Unix(), "mtime": in.Mtime.Unix(), "crtime": in.Crtime.Unix()}
		nsec := map[string]int{"ctime": in.Ctime.Nanosecond(), "atime": in.Atime.Nanosecond(), "mtime": in.Mtime.Nanosecond(), "crtime": in.Crtime.Nanosecond()}
		for _, m := range debugfsTime.FindAllStringSubmatch(out, -1) {
			sec, _ := strconv.ParseUint(m[2], 16, 32)
			s := int64(int32(sec))
			var ns int
			if m[3] != "" {
				extra, _ := strconv.ParseUint(m[3], 16, 32)
				s += int64(extra&3) << 32
				ns = int(extra >> 2)
			}
			if times[m[1]] != s || nsec[m[1]] != ns {
				t.Errorf("%s: %s %d.%09d, debugfs says %d.%09d", name, m[1], times[m[1]], nsec[m[1]], s, ns)
			}
		}

		xs, err := fsys.Xattrs(name)
		if err != nil {
			t.Errorf("%s: Xattrs: %v", name, err)
			continue
		}
		eaOut := run(t, "debugfs", "-R", "ea_list /"+strings.TrimPrefix(name, "."), img)
		var wantEA []string
		shown := map[string]bool{} // debugfs leaves long values out
		for _, m := range debugfsEA.FindAllStringSubmatch(eaOut, -1) {
			wantEA = append(wantEA, m[1]+"="+m[2]+"="+m[3])
			shown[m[1]] = m[3] != ""
		}
		var gotEA []string
		for _, x := range xs {
			v := string(x.Value)
			if !shown[x.Name] {
				v = ""
			}
			gotEA = append(gotEA, x.Name+"="+strconv.Itoa(len(x.Value))+"="+v)
		}
		slices.Sort(wantEA)
		slices.Sort(gotEA)
		if !slices.Equal(gotEA, wantEA) {
			t.Errorf("%s: xattrs\n%q\ndebugfs says\n%q", name, gotEA, wantEA)
		}
	}
	// The attributes the test set must be there with their values.
	for _, x := range xattrsSet {
		xs, err := fsys.Xattrs(x.path)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(xs, func(a Xattr) bool { return a.Name == x.name && string(a.Value) == x.value }) {
			t.Errorf("%s: no %s=%.20q in %d attributes", x.path, x.name, x.value, len(xs))
		}
	}
}

// TestHugeFile reads a sparse file past 4 GiB through extents and
// through triple indirect blocks (1 KiB blocks need them past 64 MiB).
func TestHugeFile(t *testing.T) {
	need(t, "mkfs.ext4")
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	writeHuge(t, filepath.Join(src, "huge"))
	for _, opts := range [][]string{nil, {"-t", "ext2"}, {"-t", "ext2", "-b", "4096"}} {
		t.Run(strings.Join(opts, ""), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "fs.img")
			run(t, "mkfs.ext4", append(append([]string{"-q", "-F", "-d", src}, opts...), img, "16M")...)
			fsys := openImage(t, img)
			fi, err := fsys.Stat("huge")
			if err != nil || fi.Size() != hugeSize {
				t.Fatalf("huge: %v, %v", fi, err)
			}
			compareHuge(t, fsys, filepath.Join(src, "huge"))
			out := run(t, "debugfs", "-R", "stat /huge", img)
			if m := debugfsField.FindAllStringSubmatch(out, -1); !slices.ContainsFunc(m, func(m []string) bool {
				return m[1] == "Blockcount" && m[2] == strconv.FormatUint(fi.Sys().(*Inode).Blocks, 10)
			}) {
				t.Errorf("blocks %d, debugfs:\n%s", fi.Sys().(*Inode).Blocks, out)
			}
		})
	}
}

func TestSymlinkLoopAndDangling(t *testing.T) {
	need(t, "mkfs.ext4")
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	os.Symlink("loop2", filepath.Join(src, "loop1"))
	os.Symlink("loop1", filepath.Join(src, "loop2"))
	os.Symlink("/nonexistent/etc/passwd", filepath.Join(src, "dangling"))
	os.Symlink("../../../../etc/passwd", filepath.Join(src, "escape"))
	os.WriteFile(filepath.Join(src, "etc"), nil, 0o644)
	img := filepath.Join(t.TempDir(), "fs.img")
	run(t, "mkfs.ext4", "-q", "-F", "-d", src, img, "8M")
	fsys := openImage(t, img)
	if _, err := fsys.Open("loop1"); err == nil || !strings.Contains(err.Error(), "too many levels") {
		t.Errorf("loop: %v", err)
	}
	if _, err := fsys.Open("dangling"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dangling: %v", err)
	}
	// ".." stops at the root: the link reaches the guest's /etc, a file,
	// and never the host's.
	if _, err := fsys.Open("escape"); err == nil || errors.Is(err, fs.ErrNotExist) && !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("escape: %v", err)
	}
	if fi, err := fsys.Lstat("loop1"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat loop1: %v %v", fi, err)
	}
}

// TestHostile damages real file systems the ways an attacker would and
// checks the reader refuses cleanly, naming the problem.
func TestHostile(t *testing.T) {
	need(t, "mkfs.ext4", "debugfs")
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(filepath.Join(src, "dir"), 0o755)
	os.WriteFile(filepath.Join(src, "dir", "file"), []byte("data"), 0o644)
	mk := func(opts ...string) string {
		img := filepath.Join(t.TempDir(), "fs.img")
		run(t, "mkfs.ext4", append(append([]string{"-q", "-F", "-d", src}, opts...), img, "8M")...)
		return img
	}
	patch := func(img string, off int64, b []byte) {
		f, err := os.OpenFile(img, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	openErr := func(img string) error {
		raw, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Open(bytes.NewReader(raw), int64(len(raw)), img)
		return err
	}

	t.Run("dirloop", func(t *testing.T) {
		// A hard link from a directory to its parent: fs.WalkDir must end.
		img := mk()
		run(t, "debugfs", "-w", "-R", "ln /dir /dir/loop", img)
		fsys := openImage(t, img)
		n := 0
		err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			n++
			return err
		})
		if !errors.Is(err, image.ErrLimit) {
			t.Errorf("walk of a loop: %v after %d entries", err, n)
		}
	})
	t.Run("unknown-incompat", func(t *testing.T) {
		img := mk("-O", "^metadata_csum")
		raw, _ := os.ReadFile(img)
		v := binary.LittleEndian.Uint32(raw[1024+0x60:]) | 0x10000 | 0x80000000
		patch(img, 1024+0x60, binary.LittleEndian.AppendUint32(nil, v))
		err := openErr(img)
		if !errors.Is(err, image.ErrUnsupported) || !strings.Contains(err.Error(), "encrypt") || !strings.Contains(err.Error(), "0x80000000") {
			t.Errorf("unknown features: %v", err)
		}
	})
	t.Run("superblock-csum", func(t *testing.T) {
		img := mk()
		patch(img, 1024+0x78, []byte("tampered")) // the label
		if err := openErr(img); !errors.Is(err, image.ErrCorrupt) || !strings.Contains(err.Error(), "checksum") {
			t.Errorf("tampered superblock: %v", err)
		}
	})
	t.Run("inode-csum", func(t *testing.T) {
		img := mk()
		fsys := openImage(t, img)
		in := sys(t, fsys, "dir/file")
		g, _ := fsys.group((in.Ino - 1) / fsys.sb.inodesPerGroup)
		off := int64(g.inodeTable)*fsys.sb.blockSize + int64((in.Ino-1)%fsys.sb.inodesPerGroup)*int64(fsys.sb.inodeSize)
		patch(img, off+0x4, []byte{0xff}) // the size
		fsys = openImage(t, img)
		if _, err := fsys.Stat("dir/file"); !errors.Is(err, image.ErrCorrupt) || !strings.Contains(err.Error(), "inode") {
			t.Errorf("tampered inode: %v", err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		img := mk()
		os.Truncate(img, 4<<20)
		if err := openErr(img); !errors.Is(err, image.ErrCorrupt) {
			t.Errorf("truncated image: %v", err)
		}
	})
	t.Run("not-ext", func(t *testing.T) {
		_, err := Open(bytes.NewReader(make([]byte, 1<<20)), 1<<20, "zeros")
		if !errors.Is(err, image.ErrWrongFormat) {
			t.Errorf("zeros: %v", err)
		}
	})
}

// TestConcurrent walks and reads the shipped example image from several
// goroutines at once, sharing the FS and one open file's ReadAt, for the
// race detector: the caches are the only shared state.
func TestConcurrent(t *testing.T) {
	raw, err := os.ReadFile("testdata/example.img.gz")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	img, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := Open(bytes.NewReader(img), int64(len(img)), "example.img")
	if err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Open("home/guest/hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	ra := f.(io.ReaderAt)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					fs.ReadFile(fsys, p)
				}
				return err
			})
			buf := make([]byte, 5)
			if _, err := ra.ReadAt(buf, 0); err != nil || string(buf) != "Hello" {
				t.Errorf("ReadAt: %q, %v", buf, err)
			}
		})
	}
	wg.Wait()
}
