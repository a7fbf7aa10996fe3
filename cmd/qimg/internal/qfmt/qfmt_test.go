package qfmt

import (
	"errors"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
		err  error
	}{
		{"0", 0, nil}, {"512", 512, nil}, {"1k", 1024, nil}, {"1K", 1024, nil}, {"1M", 1 << 20, nil},
		{"1.5M", 3 << 19, nil}, {"1G", 1 << 30, nil}, {"2T", 2 << 40, nil}, {"1P", 1 << 50, nil},
		{"7E", 7 << 60, nil}, {"1b", 1, nil}, {"0x100000", 1 << 20, nil}, {"0x10k", 16 << 10, nil},
		{"16E", 0, ErrRange}, {"99999999999999999999", 0, ErrRange},
		{"", 0, ErrSize}, {"-1", 0, ErrSize}, {"1Q", 0, ErrSize}, {"1.5", 0, ErrSize}, {"1k5", 0, ErrSize},
		{" 1", 0, ErrSize}, {"1.", 0, ErrSize}, {"k", 0, ErrSize}, {"1kk", 0, ErrSize},
	} {
		got, err := ParseSize(c.in)
		if !errors.Is(err, c.err) || (c.err == nil && got != c.want) {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, %v", c.in, got, err, c.want, c.err)
		}
	}
}

func TestSizeToStr(t *testing.T) {
	for in, want := range map[uint64]string{
		0: "0 B", 512: "512 B", 1000: "0.977 KiB", 1024: "1 KiB", 200704: "196 KiB",
		1331200: "1.27 MiB", 1 << 30: "1 GiB", 1610612736: "1.5 GiB", 1023 << 20: "0.999 GiB",
		1 << 60: "1 EiB", 1<<64 - 1: "16 EiB",
	} {
		if got := SizeToStr(in); got != want {
			t.Errorf("SizeToStr(%d) = %q, want %q", in, got, want)
		}
	}
}

// The order of QEMU's QDict iteration, as observed in qemu-img 7.2 output.
func TestDictOrder(t *testing.T) {
	d := Dict{}.Add("filename", "a").Add("format", "qcow2").Add("dirty-flag", false).Add("actual-size", 1).
		Add("virtual-size", 2).Add("cluster-size", 3).Add("backing-filename", "b").
		Add("full-backing-filename", "c").Add("backing-filename-format", "qcow2")
	var keys []string
	for _, m := range d.Ordered() {
		keys = append(keys, m.Key)
	}
	want := "backing-filename-format virtual-size filename cluster-size format actual-size full-backing-filename backing-filename dirty-flag"
	if got := strings.Join(keys, " "); got != want {
		t.Errorf("order %q, want %q", got, want)
	}
}

func TestQuote(t *testing.T) {
	if got, want := Quote("a\"b\\c\n\x01é😀/"), `"a\"b\\c\n\u0001\u00E9\uD83D\uDE00/"`; got != want {
		t.Errorf("Quote = %s, want %s", got, want)
	}
}

func TestOpts(t *testing.T) {
	descs := []OptDesc{
		{Name: "cluster_size", Type: OptSize, Default: "65536"},
		{Name: "lazy_refcounts", Type: OptBool, Default: "off"},
		{Name: "backing_file", Type: OptString},
	}
	o := NewOpts(descs)
	if err := o.Parse("cluster_size=4k,lazy_refcounts=true,backing_file=a,,b"); err != nil {
		t.Fatal(err)
	}
	if got, want := o.Print(), "cluster_size=4096 lazy_refcounts=true backing_file=a,,b"; got != want {
		t.Errorf("Print = %q, want %q", got, want)
	}
	if o.String("backing_file", "") != "a,b" || !o.Bool("lazy_refcounts", false) || o.Number("cluster_size", 0) != 4096 {
		t.Errorf("values: %+v", o)
	}
	for _, bad := range []string{"foo=1", "lazy_refcounts=maybe", "cluster_size=x", "a=1,", ",", ""} {
		if err := NewOpts(descs).Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	if !HasHelp("cluster_size=4k,help") || !HasHelp("?") || HasHelp("cluster_size=4k") {
		t.Error("HasHelp")
	}
}

// TestEmptyContainers: QEMU's JSON writer (qobject/json-writer.c) breaks
// the line before the closing bracket of an empty list or object too, as
// qemu-img info prints a bitmap without flags.
func TestEmptyContainers(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{[]any{}, "[\n]"},
		{Dict{}, "{\n}"},
		{Dict{}.Add("flags", []any{}), "{\n    \"flags\": [\n    ]\n}"},
		{[]any{Dict{}}, "[\n    {\n    }\n]"},
	} {
		if got := JSON(c.v); got != c.want {
			t.Errorf("JSON(%#v) = %q, want %q", c.v, got, c.want)
		}
	}
}
