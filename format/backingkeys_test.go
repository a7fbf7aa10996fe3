package format_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/qemutest"
)

// TestUnusedBackingKey: a backing key for a level the chain does not have
// fails Open and OpenChain (as qemu-img fails), naming the last image and
// the option; keys the chain uses open it.
func TestUnusedBackingKey(t *testing.T) {
	dir := t.TempDir()
	base, top := filepath.Join(dir, "base.qcow2"), filepath.Join(dir, "top.qcow2")
	vhd := filepath.Join(dir, "v.vhd")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", base, "1M")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top, "1M")
	qemutest.Img(t, "create", "-q", "-f", "vpc", vhd, "1M")
	k := []byte("k")
	for _, c := range []struct {
		path   string
		keys   [][]byte
		last   string // "" if it opens
		option string
	}{
		{top, [][]byte{k}, "", ""},
		{top, [][]byte{k, nil}, "", ""},
		{base, [][]byte{nil}, "", ""},
		{base, [][]byte{k}, base, "backing.encrypt.key-secret"},
		{base, [][]byte{nil, k}, base, "backing.backing.encrypt.key-secret"},
		{top, [][]byte{nil, k}, base, "backing.backing.encrypt.key-secret"},
		{top, [][]byte{k, nil, k}, base, "backing.backing.backing.encrypt.key-secret"},
		{vhd, [][]byte{k}, vhd, "backing.encrypt.key-secret"},
	} {
		o := format.OpenOptions{BackingKeys: c.keys}
		img, _, err := format.Open(c.path, o)
		if err == nil {
			img.Close()
		}
		chain, cerr := format.OpenChain(c.path, o)
		if cerr == nil {
			chain.Close()
		}
		for _, err := range []error{err, cerr} {
			if c.last == "" {
				if err != nil {
					t.Errorf("%s %q: %v", c.path, c.keys, err)
				}
				continue
			}
			var uk *format.UnusedKeyError
			if !errors.As(err, &uk) || uk.Image != c.last || uk.Option != c.option || uk.NoBackingFiles != (c.path == vhd) {
				t.Fatalf("%s %q: %#v", c.path, c.keys, err)
			}
			if !errors.Is(err, image.ErrInvalidArgument) || !strings.Contains(err.Error(), c.last) || !strings.Contains(err.Error(), c.option) {
				t.Errorf("%s %q: %v", c.path, c.keys, err)
			}
		}
	}
}
