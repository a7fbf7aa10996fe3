package inflate_test

import (
	"bytes"
	stdflate "compress/flate"
	stdzlib "compress/zlib"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	kflate "github.com/klauspost/compress/flate"

	"github.com/qimg/qimg/internal/deflate"
	"github.com/qimg/qimg/internal/inflate"
)

func samples() [][]byte {
	rng := rand.New(rand.NewPCG(5, 6))
	random := make([]byte, 65536)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	text := []byte(strings.Repeat("Lorem ipsum dolor sit amet, qimg consectetur adipiscing elit\n", 1200))
	mixed := make([]byte, 65536)
	for i := 0; i < len(mixed); i += 2048 {
		switch rng.IntN(3) {
		case 0:
			copy(mixed[i:], random[i:i+2048])
		case 1:
			copy(mixed[i:], text[i%3000:])
		}
	}
	return [][]byte{{}, {1}, make([]byte, 65536), text[:65536], random, mixed,
		bytes.Repeat([]byte("ab"), 40000), append(make([]byte, 100), random[:500]...)}
}

// streams compresses each sample with every encoder at hand: ours (4 KiB
// window), Go's and klauspost's at several levels (32 KiB window, fixed
// and stored blocks included).
func streams(t testing.TB) map[string][2][]byte {
	out := map[string][2][]byte{}
	for i, s := range samples() {
		out[string(rune('a'+i))+"/qimg"] = [2][]byte{s, deflate.Compress(nil, s)}
		for _, level := range []int{0, 1, 6, 9, -2} {
			var b bytes.Buffer
			w, _ := stdflate.NewWriter(&b, level)
			w.Write(s)
			w.Close()
			out[string(rune('a'+i))+"/std"+string(rune('0'+level+2))] = [2][]byte{s, bytes.Clone(b.Bytes())}
			b.Reset()
			kw, _ := kflate.NewWriter(&b, level)
			kw.Write(s)
			kw.Close()
			out[string(rune('a'+i))+"/k"+string(rune('0'+level+2))] = [2][]byte{s, bytes.Clone(b.Bytes())}
		}
	}
	return out
}

// TestDecompress runs every stream through the package's Decompress and
// through one Decoder reused for all of them (whole, cut, and into buffers
// of other sizes), which must not carry anything from one call to the next.
func TestDecompress(t *testing.T) {
	var z inflate.Decoder
	for _, decompress := range []func(dst, src []byte) (int, error){inflate.Decompress, z.Decompress} {
		testDecompress(t, decompress)
	}
}

func testDecompress(t *testing.T, decompress func(dst, src []byte) (int, error)) {
	for name, s := range streams(t) {
		plain, comp := s[0], s[1]
		dst := make([]byte, len(plain))
		n, err := decompress(dst, comp)
		if err != nil || n != len(plain) || !bytes.Equal(dst, plain) {
			t.Errorf("%s: n=%d err=%v equal=%v", name, n, err, bytes.Equal(dst[:n], plain[:n]))
		}
		// A shorter output buffer is filled and the rest ignored.
		if len(plain) > 10 {
			half := make([]byte, len(plain)/2)
			if n, err := decompress(half, comp); err != nil || n != len(half) || !bytes.Equal(half, plain[:len(half)]) {
				t.Errorf("%s: half buffer: n=%d err=%v", name, n, err)
			}
		}
		// A longer one reports the short stream.
		long := make([]byte, len(plain)+1)
		if n, err := decompress(long, comp); !errors.Is(err, inflate.ErrShort) || n != len(plain) {
			t.Errorf("%s: long buffer: n=%d err=%v", name, n, err)
		}
		// A truncated stream is an error unless what is left still holds
		// the whole output (then Go's inflater gets it all too).
		if len(comp) > 4 && len(plain) > 0 {
			cut := comp[:len(comp)/2]
			want, _ := io.ReadAll(io.LimitReader(stdflate.NewReader(bytes.NewReader(cut)), int64(len(plain))))
			_, err := decompress(make([]byte, len(plain)), cut)
			if err != nil && !errors.Is(err, inflate.ErrTruncated) {
				t.Errorf("%s: truncated stream: %v, want ErrTruncated", name, err)
			}
			if (err == nil) != (len(want) == len(plain)) {
				t.Errorf("%s: truncated stream: err=%v, Go's inflater got %d of %d bytes", name, err, len(want), len(plain))
			}
		}
	}
}

// zlibStreams wraps every sample in zlib streams from Go's writer: at
// several levels, and with a sync flush (an empty stored block) before the
// end.
func zlibStreams() map[string][2][]byte {
	out := map[string][2][]byte{}
	for i, s := range samples() {
		for _, level := range []int{0, 1, 6, 9} {
			for _, flush := range []bool{false, true} {
				var b bytes.Buffer
				w, _ := stdzlib.NewWriterLevel(&b, level)
				w.Write(s)
				if flush {
					w.Flush()
				}
				w.Close()
				out[fmt.Sprintf("%c/level%d/flush=%v", 'a'+i, level, flush)] = [2][]byte{s, b.Bytes()}
			}
		}
	}
	return out
}

func TestDecompressZlib(t *testing.T) {
	var z inflate.Decoder
	for name, s := range zlibStreams() {
		plain, comp := s[0], s[1]
		check := func(what string, dst, src []byte, wantN int, wantErr error) {
			t.Helper()
			n, err := z.DecompressZlib(dst, src)
			if n != wantN || !errors.Is(err, wantErr) || err == nil && !bytes.Equal(dst[:n], plain[:n]) {
				t.Errorf("%s: %s: n=%d err=%v, want n=%d err=%v", name, what, n, err, wantN, wantErr)
			}
		}
		check("exact buffer", make([]byte, len(plain)), comp, len(plain), nil)
		check("trailing bytes", make([]byte, len(plain)), append(bytes.Clone(comp), 1, 2, 3), len(plain), nil)
		if n, err := z.DecompressZlib(make([]byte, len(plain)+1), comp); n != len(plain) || !errors.Is(err, inflate.ErrShort) {
			t.Errorf("%s: longer buffer: n=%d err=%v, want %d, ErrShort", name, n, err, len(plain))
		}
		if len(plain) > 0 {
			if _, err := z.DecompressZlib(make([]byte, len(plain)-1), comp); !errors.Is(err, inflate.ErrLong) {
				t.Errorf("%s: shorter buffer: %v, want ErrLong", name, err)
			}
		}
		bad := bytes.Clone(comp)
		bad[len(bad)-1] ^= 1
		if _, err := z.DecompressZlib(make([]byte, len(plain)), bad); !errors.Is(err, inflate.ErrCorrupt) {
			t.Errorf("%s: wrong checksum: %v, want ErrCorrupt", name, err)
		}
		if _, err := z.DecompressZlib(make([]byte, len(plain)), comp[:len(comp)-1]); !errors.Is(err, inflate.ErrTruncated) {
			t.Errorf("%s: checksum cut: %v, want ErrTruncated", name, err)
		}
		for _, hdr := range [][2]byte{{0x78, 0x9d}, {0x79, 0x18}, {0x88, 0x1c}, {0x78, 0xbb}} {
			bad := append(hdr[:], comp[2:]...)
			if _, err := z.DecompressZlib(make([]byte, len(plain)), bad); !errors.Is(err, inflate.ErrCorrupt) {
				t.Errorf("%s: header % x: %v, want ErrCorrupt", name, hdr, err)
			}
		}
	}
}

// FuzzDecompressZlib checks arbitrary zlib input against Go's reader:
// whatever we accept (whole or short), Go's reader decodes to the same
// bytes and ends there with a good checksum.
func FuzzDecompressZlib(f *testing.F) {
	for _, s := range zlibStreams() {
		if len(s[1]) < 2000 {
			f.Add(s[1], uint16(len(s[0])))
		}
	}
	f.Fuzz(func(t *testing.T, comp []byte, size uint16) {
		dst := make([]byte, int(size)+16)
		guard := dst[size:]
		var z inflate.Decoder
		n, err := z.DecompressZlib(dst[:size], comp)
		if !bytes.Equal(guard, make([]byte, 16)) {
			t.Fatal("wrote past the buffer")
		}
		if err != nil && !errors.Is(err, inflate.ErrShort) {
			return
		}
		r, zerr := stdzlib.NewReader(bytes.NewReader(comp))
		if zerr != nil {
			t.Fatalf("we accept %d bytes; Go's reader refuses the header: %v", n, zerr)
		}
		want, zerr := io.ReadAll(io.LimitReader(r, int64(size)+1))
		if zerr != nil || !bytes.Equal(dst[:n], want) {
			t.Fatalf("we decode %d bytes (%v); Go's reader gets %d bytes, %v", n, err, len(want), zerr)
		}
	})
}

// FuzzDecompress checks arbitrary input: never a panic or a write past
// the buffer, and whatever we decode successfully starts with what Go's
// inflater decodes. The two disagree on validity both ways, so only the
// common prefix is compared: like zlib (and so QEMU) we reject a block
// without an end-of-block code, which Go accepts, and accept some
// incomplete codes zlib accepts and Go rejects.
func FuzzDecompress(f *testing.F) {
	for _, s := range streams(f) {
		if len(s[1]) < 2000 {
			f.Add(s[1], uint16(len(s[0])))
		}
	}
	f.Fuzz(func(t *testing.T, comp []byte, size uint16) {
		dst := make([]byte, int(size)+16)
		guard := dst[size:]
		n, err := inflate.Decompress(dst[:size], comp)
		if !bytes.Equal(guard, make([]byte, 16)) {
			t.Fatal("wrote past the buffer")
		}
		if err != nil {
			return
		}
		want, _ := io.ReadAll(io.LimitReader(stdflate.NewReader(bytes.NewReader(comp)), int64(size)))
		if n != int(size) || !bytes.HasPrefix(dst[:n], want) {
			t.Fatalf("we decode %d bytes without error; Go's inflater gets %d different ones", n, len(want))
		}
	})
}

// diskClusters cuts a disk-like corpus into 64 KiB clusters compressed as
// qimg writes them: Go's own sources (text) and tool binaries, what
// the clusters of an OS image mostly hold.
func diskClusters(b *testing.B) (plain, comp [][]byte) {
	root := runtime.GOROOT()
	var corpus []byte
	add := func(dir string) {
		filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() || len(corpus) >= 16<<20 {
				return nil
			}
			if data, err := os.ReadFile(p); err == nil {
				corpus = append(corpus, data[:min(len(data), 4<<20)]...)
			}
			return nil
		})
	}
	add(filepath.Join(root, "src", "net"))
	add(filepath.Join(root, "pkg", "tool"))
	if len(corpus) < 1<<20 {
		b.Skip("no Go tree to build a corpus from")
	}
	for off := 0; off+65536 <= len(corpus); off += 65536 {
		plain = append(plain, corpus[off:off+65536])
		comp = append(comp, deflate.Compress(nil, corpus[off:off+65536]))
	}
	return plain, comp
}

func BenchmarkDecompress(b *testing.B) {
	plain, comp := diskClusters(b)
	dst := make([]byte, 65536)
	var z inflate.Decoder
	b.SetBytes(int64(len(plain) * 65536))
	b.ResetTimer()
	for range b.N {
		for _, c := range comp {
			if _, err := z.Decompress(dst, c); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkKlauspost is the same work for klauspost's inflater, which reads
// through an io.Reader.
func BenchmarkKlauspost(b *testing.B) {
	plain, comp := diskClusters(b)
	dst := make([]byte, 65536)
	r := kflate.NewReader(bytes.NewReader(nil))
	b.SetBytes(int64(len(plain) * 65536))
	b.ResetTimer()
	for range b.N {
		for _, c := range comp {
			r.(kflate.Resetter).Reset(bytes.NewReader(c), nil)
			if _, err := io.ReadFull(r, dst); err != nil {
				b.Fatal(err)
			}
		}
	}
}
