package deflate

import (
	"bytes"
	stdflate "compress/flate"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	kflate "github.com/klauspost/compress/flate"
)

// inputs are buffers of the kinds a disk holds: text, binary, random,
// zeros, runs, and sizes around block and window boundaries.
func inputs() map[string][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 70000)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	text := []byte(strings.Repeat("root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n", 900))
	mixed := make([]byte, 65536)
	for i := 0; i < len(mixed); i += 4096 {
		switch rng.IntN(3) {
		case 0:
			copy(mixed[i:], random[i:i+4096])
		case 1:
			copy(mixed[i:], text[i%1000:])
		}
	}
	small := make([]byte, 300000) // many blocks
	for i := range small {
		small[i] = byte(rng.IntN(4)) + 'a'
	}
	return map[string][]byte{
		"empty":    {},
		"one":      {42},
		"two":      {1, 2},
		"zeros":    make([]byte, 65536),
		"text":     text,
		"random":   random,
		"mixed":    mixed,
		"small":    small,
		"runs":     bytes.Repeat([]byte("abcabcabcabcXYZ"), 5000),
		"2m":       bytes.Repeat(mixed, 32),
		"boundary": append(bytes.Repeat([]byte{7}, WindowSize), bytes.Repeat([]byte("edge"), 2000)...),
	}
}

func inflateWith(t testing.TB, r io.ReadCloser) []byte {
	t.Helper()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	for name, in := range inputs() {
		comp := Compress(nil, in)
		if got := inflateWith(t, stdflate.NewReader(bytes.NewReader(comp))); !bytes.Equal(got, in) {
			t.Errorf("%s: Go's inflater reads something else", name)
		}
		if got := inflateWith(t, kflate.NewReader(bytes.NewReader(comp))); !bytes.Equal(got, in) {
			t.Errorf("%s: klauspost's inflater reads something else", name)
		}
		checkWindow(t, in)
		if len(in) > 1000 && len(comp) > len(in)+len(in)/100+64 {
			t.Errorf("%s: %d bytes compressed to %d", name, len(in), len(comp))
		}
	}
}

// TestRatioMatchesZlib: on text the encoder must compress about as well as
// zlib at level 6 with a 4 KiB window (measured with Python's zlib on the
// same input: 1.7 % of the input for this text).
func TestRatioOnText(t *testing.T) {
	in := inputs()["text"]
	comp := Compress(nil, in)
	if ratio := float64(len(comp)) / float64(len(in)); ratio > 0.02 {
		t.Fatalf("text compresses to %.4f of its size", ratio)
	}
}

// checkWindow fails if compressing in uses a back-reference farther than
// 4 KiB, the window QEMU inflates qcow2 clusters with. (The round trips
// prove that the tokens are what the stream encodes; qemu-img itself reads
// qimg's compressed clusters in the convert and qcow2 tests.)
func checkWindow(t testing.TB, in []byte) {
	t.Helper()
	var e Encoder
	e.Compress(nil, in)
	for _, tok := range e.tokens {
		if tok.isMatch() && (tok.dist() > WindowSize || tok.dist() < 1 || tok.length() > maxMatch) {
			t.Fatalf("match of %d bytes at distance %d", tok.length(), tok.dist())
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, in := range inputs() {
		if len(in) < 4096 {
			f.Add(in)
		}
	}
	f.Add([]byte("abababababababababab"))
	f.Fuzz(func(t *testing.T, in []byte) {
		comp := Compress(nil, in)
		checkWindow(t, in)
		if got := inflateWith(t, stdflate.NewReader(bytes.NewReader(comp))); !bytes.Equal(got, in) {
			t.Fatal("Go's inflater differs")
		}
	})
}

func BenchmarkCompress(b *testing.B) {
	in := inputs()["mixed"]
	b.SetBytes(int64(len(in)))
	var out []byte
	for range b.N {
		out = Compress(out[:0], in)
	}
}
