package hive_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/qimg/qimg/guestfs/hive"
	"github.com/qimg/qimg/image"
	"github.com/qimg/qimg/internal/hivetest"
)

// tree is a hive with every value type, many subkeys (so every list
// kind holds several entries), non-ASCII names and a value big enough
// for a "db" cell.
func tree() *hivetest.Key {
	root := &hivetest.Key{Name: "ROOT"}
	cv := root.Path(`Microsoft\Windows NT\CurrentVersion`)
	cv.Values = []hivetest.Value{
		hivetest.SZ("ProductName", "Windows Server 2022 Datacenter"),
		hivetest.ExpandSZ("SystemRoot", `%SystemDrive%\Windows`),
		hivetest.DWord("CurrentMajorVersionNumber", 10),
		hivetest.QWord("InstallTime", 0x01d8_0000_1234_5678),
		hivetest.MultiSZ("Multi", "a", "bé", "c"),
		hivetest.Binary("Big", bytes.Repeat([]byte("0123456789abcdef"), 5000)),
		hivetest.Binary("Tiny", []byte{1, 2, 3}),
		hivetest.SZ("", "default"),
		hivetest.SZ("Ünïcödé ☃", "snow"),
	}
	for i := range 40 {
		root.Path(fmt.Sprintf(`Many\Key%02d`, 39-i)).Values = []hivetest.Value{hivetest.DWord("N", uint32(39-i))}
	}
	root.Path(`Many\Schnee☃`)
	return root
}

var layouts = []hivetest.Options{
	{}, {List: "lf"}, {List: "li"}, {List: "ri"}, {UTF16Names: true}, {Minor: 3},
}

func open(t *testing.T, b []byte) *hive.Hive {
	t.Helper()
	h, err := hive.Open(bytes.NewReader(b), int64(len(b)), "SOFTWARE")
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestReadEveryLayout(t *testing.T) {
	for _, opt := range layouts {
		t.Run(fmt.Sprintf("%+v", opt), func(t *testing.T) {
			h := open(t, hivetest.Build(tree(), opt))
			cv, err := h.Key(`microsoft\WINDOWS NT\currentversion`)
			if err != nil {
				t.Fatal(err)
			}
			if cv.Path() != `Microsoft\Windows NT\CurrentVersion` {
				t.Errorf("path %q", cv.Path())
			}
			str := func(name, want string) {
				t.Helper()
				v, err := cv.Value(name)
				if err != nil {
					t.Fatal(err)
				}
				if s, err := v.String(); err != nil || s != want {
					t.Errorf("%s = %q, %v; want %q", name, s, err, want)
				}
			}
			str("productname", "Windows Server 2022 Datacenter")
			str("SystemRoot", `%SystemDrive%\Windows`)
			str("", "default")
			str("ÜNÏCÖDÉ ☃", "snow")
			num := func(name string, want uint64) {
				t.Helper()
				v, err := cv.Value(name)
				if err != nil {
					t.Fatal(err)
				}
				if n, err := v.Uint(); err != nil || n != want {
					t.Errorf("%s = %d, %v; want %d", name, n, err, want)
				}
			}
			num("CurrentMajorVersionNumber", 10)
			num("InstallTime", 0x01d8_0000_1234_5678)
			v, _ := cv.Value("Multi")
			if ss, err := v.Strings(); err != nil || !slices.Equal(ss, []string{"a", "bé", "c"}) {
				t.Errorf("Multi = %q, %v", ss, err)
			}
			for name, want := range map[string][]byte{
				"Big":  bytes.Repeat([]byte("0123456789abcdef"), 5000),
				"Tiny": {1, 2, 3},
			} {
				v, _ := cv.Value(name)
				if b, err := v.Data(); err != nil || !bytes.Equal(b, want) {
					t.Errorf("%s: %d bytes, %v", name, len(b), err)
				}
			}
			if _, err := v.Uint(); !errors.Is(err, image.ErrInvalidArgument) {
				t.Errorf("Uint of a multi-string: %v", err)
			}
			many, err := h.Key("Many")
			if err != nil {
				t.Fatal(err)
			}
			subs, err := many.Subkeys()
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range subs {
				names = append(names, s.Name())
			}
			if len(names) != 41 || names[0] != "Key00" || names[39] != "Key39" || names[40] != "Schnee☃" {
				t.Errorf("subkeys %q", names)
			}
			k, err := many.Subkey("KEY17")
			if err != nil {
				t.Fatal(err)
			}
			v, _ = k.Value("N")
			if n, _ := v.Uint(); n != 17 {
				t.Errorf("Key17 N = %d", n)
			}
			if _, err := many.Subkey("Key40"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("missing key: %v", err)
			}
			if _, err := cv.Value("nothing"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("missing value: %v", err)
			}
		})
	}
}

// patch changes a hive in place and fixes the base block checksum.
func patch(b []byte, f func(b []byte)) []byte {
	b = bytes.Clone(b)
	f(b)
	var x uint32
	for i := 0; i < 508; i += 4 {
		x ^= binary.LittleEndian.Uint32(b[i:])
	}
	binary.LittleEndian.PutUint32(b[508:], x)
	return b
}

// find returns the offset of the cell data starting with sig and
// holding needle (relative to the file).
func find(t *testing.T, b []byte, sig, needle string) int {
	t.Helper()
	for i := 4096; i+4 < len(b); i += 8 {
		if string(b[i+4:i+4+len(sig)]) == sig && bytes.Contains(b[i+4:min(i+4+256, len(b))], []byte(needle)) {
			return i + 4
		}
	}
	t.Fatalf("no %s cell with %q", sig, needle)
	return 0
}

// TestHostile checks that damaged hives give corruption errors naming
// the file, never a panic, a loop or a huge allocation.
func TestHostile(t *testing.T) {
	good := hivetest.Build(tree(), hivetest.Options{List: "ri"})
	le := binary.LittleEndian
	cases := map[string]struct {
		data []byte
		path string
	}{
		"bad checksum":  {func() []byte { b := bytes.Clone(good); b[100] ^= 1; return b }(), ""},
		"version 2.0":   {patch(good, func(b []byte) { le.PutUint32(b[20:], 2) }), ""},
		"log file type": {patch(good, func(b []byte) { le.PutUint32(b[28:], 1) }), ""},
		"root outside":  {patch(good, func(b []byte) { le.PutUint32(b[36:], 1<<30) }), ""},
		"root in base":  {patch(good, func(b []byte) { le.PutUint32(b[36:], 0xFFFFFFF0) }), ""},
		"bins overrun": {patch(good, func(b []byte) {
			le.PutUint32(b[40:], 1<<31)
			le.PutUint32(b[36:], uint32(len(b)))
		}), ""},
		"huge subkey count": {patch(good, func(b []byte) {
			nk := find(t, b, "nk", "Many")
			le.PutUint32(b[nk+20:], 1000)
		}), `Many\Key05`},
		"ri in ri": {patch(good, func(b []byte) {
			ri := find(t, b, "ri", "")
			copy(b[ri:], "ri")
			le.PutUint32(b[ri+4:], uint32(ri-4-4096)) // the first leaf is the ri itself
		}), `Many\Key05`},
		"list count overrun": {patch(good, func(b []byte) {
			lh := find(t, b, "lh", "")
			le.PutUint16(b[lh+2:], 0xFFFF)
		}), `Many\Key05`},
		"free cell": {patch(good, func(b []byte) {
			nk := find(t, b, "nk", "CurrentVersion")
			le.PutUint32(b[nk-4:], 4096)
		}), `Microsoft\Windows NT\CurrentVersion`},
		"cell size overrun": {patch(good, func(b []byte) {
			nk := find(t, b, "nk", "CurrentVersion")
			le.PutUint32(b[nk-4:], 0xC0000000)
		}), `Microsoft\Windows NT\CurrentVersion`},
		"name overrun": {patch(good, func(b []byte) {
			nk := find(t, b, "nk", "CurrentVersion")
			le.PutUint16(b[nk+72:], 0xFFFF)
		}), `Microsoft\Windows NT\CurrentVersion`},
		"name with backslash": {patch(good, func(b []byte) {
			nk := find(t, b, "nk", "CurrentVersion")
			b[nk+76+3] = '\\'
		}), `Microsoft\Windows NT\CurrentVersion`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			h, err := hive.Open(bytes.NewReader(c.data), int64(len(c.data)), "SOFTWARE")
			if err == nil {
				_, err = h.Key(c.path)
			}
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, image.ErrCorrupt) && !errors.Is(err, image.ErrUnsupported) {
				t.Errorf("%v: not ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), "SOFTWARE") {
				t.Errorf("%v: does not name the file", err)
			}
		})
	}
}

// TestValueHostile damages value cells: a "db" cell with too few
// segments, inline data longer than 4 bytes, a value count past its
// list.
func TestValueHostile(t *testing.T) {
	good := hivetest.Build(tree(), hivetest.Options{})
	le := binary.LittleEndian
	for name, f := range map[string]func(b []byte){
		"db segments": func(b []byte) {
			db := find(t, b, "db", "")
			le.PutUint16(b[db+2:], 1)
		},
		"inline size": func(b []byte) {
			vk := find(t, b, "vk", "Tiny")
			le.PutUint32(b[vk+4:], 0x80000009)
		},
		"data overrun": func(b []byte) {
			vk := find(t, b, "vk", "SystemRoot")
			le.PutUint32(b[vk+4:], 1<<20)
		},
		"value count": func(b []byte) {
			nk := find(t, b, "nk", "CurrentVersion")
			le.PutUint32(b[nk+36:], 1000)
		},
	} {
		t.Run(name, func(t *testing.T) {
			h := open(t, patch(good, f))
			cv, err := h.Key(`Microsoft\Windows NT\CurrentVersion`)
			if err != nil {
				t.Fatal(err)
			}
			vals, err := cv.Values()
			for _, v := range vals {
				if _, err = v.Data(); err != nil {
					break
				}
			}
			if !errors.Is(err, image.ErrCorrupt) || !strings.Contains(err.Error(), "SOFTWARE") {
				t.Errorf("%v: not ErrCorrupt naming the file", err)
			}
		})
	}
}
