package ext4

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/qimg/qimg/image"
)

// The model test applies random operations to an image, through the
// write side, and to a host directory, through the kernel (as root: it
// chowns and sets trusted.* attributes). Both must agree on every
// operation's success, and after every commit the image must pass
// e2fsck -fn and hold the host's tree, read by this package and by
// debugfs (model_tree_test.go). A failure names the seed;
// QIMG_EXT4_MODEL_SEED replays it, and QIMG_EXT4_MODEL_ITERS sets the
// operations per file system, for soaking.
const (
	modelSeedEnv  = "QIMG_EXT4_MODEL_SEED"
	modelItersEnv = "QIMG_EXT4_MODEL_ITERS"
)

// modelVariants are the write variants plus one of many small groups
// and few inodes, where allocation crosses groups and inodes run out.
func modelVariants() []struct {
	name string
	opts []string
} {
	v := slices.Clone(writeVariants)
	return append(v, struct {
		name string
		opts []string
	}{"ext4-small-groups", []string{"-g", "1024", "-N", "512"}})
}

func TestModel(t *testing.T) {
	need(t, "mkfs.ext4", "e2fsck", "debugfs", "cp")
	if os.Geteuid() != 0 {
		t.Skip("the host side of the model needs root (chown, trusted.* attributes)")
	}
	iters := 80
	if testing.Short() {
		iters = 30
	}
	if s := os.Getenv(modelItersEnv); s != "" {
		n, err := strconv.Atoi(s)
		must(t, err)
		iters = n
	}
	// A fixed seed keeps CI's verdict reproducible; set the variable to
	// "random" to explore new sequences (as the one below was found).
	seed := uint64(1796565289326818030)
	switch s := os.Getenv(modelSeedEnv); s {
	case "":
	case "random":
		seed = uint64(time.Now().UnixNano())
	default:
		n, err := strconv.ParseUint(s, 10, 64)
		must(t, err)
		seed = n
	}
	t.Logf("seed %d, %d operations per file system", seed, iters)
	for i, v := range modelVariants() {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("replay: %s=%d %s=%d go test -run 'TestModel/%s$' ./guestfs/ext4/", modelSeedEnv, seed, modelItersEnv, iters, v.name)
				}
			})
			m := newModel(t, seed+uint64(i), v.opts...)
			m.run(iters)
		})
	}
}

// model is one run: the image and its writer, the host tree and its
// copy at the last commit.
type model struct {
	t     *testing.T
	rng   *rand.Rand
	img   string
	dev   *os.File
	f     *FS
	bs    int64
	cur   string // the host tree the operations change
	snap  string // cur as of the last commit
	log   []string
	stats map[string]int
}

func newModel(t *testing.T, seed uint64, opts ...string) *model {
	dir := t.TempDir()
	m := &model{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15)),
		img: filepath.Join(dir, "fs.img"), cur: filepath.Join(dir, "cur"), snap: filepath.Join(dir, "snap"),
		stats: map[string]int{}}
	m.seedTree()
	run(t, "mkfs.ext4", append(append([]string{"-q", "-F", "-d", m.cur}, opts...), m.img, "32M")...)
	e2fsckFix(t, m.img, "-fyD")
	m.open()
	t.Cleanup(func() { m.dev.Close() })
	m.bs = m.f.Info().BlockSize
	m.verify(m.hostTree(m.cur, true), true)
	m.snapshot()
	return m
}

// seedTree makes the host tree the image starts from (mkfs -d copies
// it): a directory of long names that e2fsck -D indexes, so that
// entries are added to and removed from an htree, and a few files with
// attributes.
func (m *model) seedTree() {
	must(m.t, os.Mkdir(m.cur, 0o755))
	big := filepath.Join(m.cur, "big")
	must(m.t, os.Mkdir(big, 0o755))
	for i := range 100 + m.rng.IntN(150) {
		name := fmt.Sprintf("seeded-%03d-%s", i, strings.Repeat("n", m.rng.IntN(80)))
		must(m.t, os.WriteFile(filepath.Join(big, name), m.data(m.rng.Int64N(200)), 0o644))
	}
	etc := filepath.Join(m.cur, "etc")
	must(m.t, os.Mkdir(etc, 0o755))
	for _, name := range []string{"hostname", "fstab", "passwd"} {
		p := filepath.Join(etc, name)
		must(m.t, os.WriteFile(p, m.data(m.rng.Int64N(3000)), 0o644))
		must(m.t, unix.Lsetxattr(p, "user.seeded", []byte(name), 0))
	}
}

// unsyncedDevice is a Device whose Flush does nothing: the model test
// judges what a commit leaves, not its order of writes (the crash test
// does), and fsync on a shared machine costs most of its time.
type unsyncedDevice struct{ *os.File }

func (unsyncedDevice) Flush() error { return nil }

// open (re)opens the image for writing.
func (m *model) open() {
	if m.dev != nil {
		m.dev.Close()
	}
	fd, err := os.OpenFile(m.img, os.O_RDWR, 0)
	must(m.t, err)
	st, err := fd.Stat()
	must(m.t, err)
	f, err := OpenWritable(unsyncedDevice{fd}, st.Size(), m.img)
	if err != nil {
		fd.Close()
		m.fatalf("reopening: %v", err)
	}
	m.dev, m.f = fd, f
}

func (m *model) run(iters int) {
	total := 0
	for _, op := range modelOps {
		total += op.weight
	}
	for range iters {
		r := m.rng.IntN(total)
		for _, op := range modelOps {
			if r -= op.weight; r < 0 {
				op.do(m)
				break
			}
		}
	}
	m.commit()
	m.t.Logf("outcomes: %v", m.stats)
}

// fatalf fails the run with the operations that led there.
func (m *model) fatalf(format string, args ...any) {
	m.t.Helper()
	log := m.log[max(0, len(m.log)-60):]
	m.t.Fatalf("%s\nlast %d of %d operations:\n%s", fmt.Sprintf(format, args...), len(log), len(m.log), strings.Join(log, "\n"))
}

type modelOp struct {
	weight int
	do     func(*model)
}

var modelOps = []modelOp{
	{12, (*model).create},
	{8, (*model).overwrite},
	{1, (*model).bulk},
	{1, (*model).fill},
	{9, (*model).mkdir},
	{6, (*model).remove},
	{3, (*model).removeAll},
	{10, (*model).rename},
	{6, (*model).symlink},
	{5, (*model).link},
	{6, (*model).truncate},
	{4, (*model).chmod},
	{3, (*model).chown},
	{4, (*model).chtimes},
	{6, (*model).setXattr},
	{3, (*model).removeXattr},
	{4, (*model).commit},
	{1, (*model).discard},
}

// apply runs one operation on the image and then on the host, and
// checks they agree. An operation that allocates may fail on the image
// alone for want of space (image.ErrLimit): the host is then left alone.
// A failed operation must change nothing.
func (m *model) apply(desc string, allocates bool, img, host func() error) (full bool) {
	m.t.Helper()
	before := m.f.Info()
	ierr := img()
	if ierr != nil && allocates && errors.Is(ierr, image.ErrLimit) {
		m.log = append(m.log, fmt.Sprintf("%s: image full: %v", desc, ierr))
		m.stats["full"]++
		m.unchanged(desc, before)
		m.compare(m.hostTree(m.cur, false), m.imageTree(m.f, false), "staged after "+desc, allFields&^fSum)
		return true
	}
	herr := host()
	m.log = append(m.log, fmt.Sprintf("%s: image %v, host %v", desc, ierr, herr))
	if (ierr == nil) != (herr == nil) {
		m.fatalf("%s: the image says %v, the host %v", desc, ierr, herr)
	}
	if ierr == nil {
		m.stats["ok"]++
		return false
	}
	m.stats["failed"]++
	var errno syscall.Errno
	if errors.As(herr, &errno) {
		switch errno {
		case syscall.ENOENT:
			if !errors.Is(ierr, fs.ErrNotExist) {
				m.fatalf("%s: the host says %v, the image %v (want fs.ErrNotExist)", desc, herr, ierr)
			}
		case syscall.EEXIST, syscall.ENOTEMPTY:
			if !errors.Is(ierr, fs.ErrExist) {
				m.fatalf("%s: the host says %v, the image %v (want fs.ErrExist)", desc, herr, ierr)
			}
		}
	}
	m.unchanged(desc, before)
	return false
}

// unchanged checks a failed operation left the free counts alone.
func (m *model) unchanged(desc string, before Info) {
	m.t.Helper()
	if after := m.f.Info(); after.FreeBlocks != before.FreeBlocks || after.FreeInodes != before.FreeInodes {
		m.fatalf("%s failed but changed the free counts: blocks %d → %d, inodes %d → %d",
			desc, before.FreeBlocks, after.FreeBlocks, before.FreeInodes, after.FreeInodes)
	}
}

// commit commits, checks the image three ways against the host tree,
// and keeps a copy of the tree for a later discard. Now and then the
// image is reopened, or its directories indexed by e2fsck -fyD (so
// that later changes go through htree code).
func (m *model) commit() {
	want := m.hostTree(m.cur, true)
	m.compare(want, m.imageTree(m.f, false), "staged before commit", allFields&^fSum)
	if err := m.f.Commit(context.Background()); err != nil {
		m.fatalf("commit: %v", err)
	}
	m.log = append(m.log, "commit")
	m.stats["commit"]++
	m.verify(want, true)
	m.snapshot()
	switch m.rng.IntN(6) {
	case 0:
		m.open()
		m.log = append(m.log, "reopen")
	case 1:
		out, code := runCode("/usr/sbin/e2fsck", "-fyD", m.img)
		if code > 1 {
			m.fatalf("e2fsck -fyD: exit %d\n%s", code, out)
		}
		m.log = append(m.log, "e2fsck -fyD and reopen")
		m.open()
		m.verify(want, false)
	}
}

// discard drops the staged changes, and the host tree goes back to the
// last commit's copy.
func (m *model) discard() {
	must(m.t, m.f.Discard())
	m.log = append(m.log, "discard")
	m.stats["discard"]++
	must(m.t, os.RemoveAll(m.cur))
	run(m.t, "cp", "-a", m.snap, m.cur)
	m.compare(m.hostTree(m.cur, true), m.imageTree(m.f, true), "staged after discard", allFields)
}

func (m *model) snapshot() {
	must(m.t, os.RemoveAll(m.snap))
	run(m.t, "cp", "-a", m.cur, m.snap)
}

// verify checks the committed image: e2fsck -fn clean, and the tree
// read by a fresh reader (and by debugfs if asked) equal to want.
func (m *model) verify(want map[string]*node, debugfs bool) {
	m.t.Helper()
	out, code := runCode("/usr/sbin/e2fsck", "-fn", m.img)
	if code != 0 {
		m.fatalf("e2fsck -fn: exit %d\n%s", code, out)
	}
	fd, err := os.Open(m.img)
	must(m.t, err)
	defer fd.Close()
	st, err := fd.Stat()
	must(m.t, err)
	fresh, err := Open(fd, st.Size(), m.img)
	if err != nil {
		m.fatalf("reading the committed image: %v", err)
	}
	m.compare(want, m.imageTree(fresh, true), "committed, read back", allFields)
	m.coverage(fresh)
	if debugfs {
		m.compare(want, m.debugfsTree(), "committed, read by debugfs", allFields)
	}
}
