package deflate

import (
	"bytes"
	stdflate "compress/flate"
	"io"
	"math/rand/v2"
	"testing"
)

// TestBuildCodeLimits: skewed frequencies (Fibonacci numbers make the
// deepest Huffman trees) must give complete codes within the length limit,
// since inflaters reject over-subscribed and incomplete codes alike.
func TestBuildCodeLimits(t *testing.T) {
	for _, c := range []struct{ symbols, maxBits int }{{19, 7}, {30, 15}, {286, 15}, {8, 7}, {40, 7}} {
		freq := make([]int, c.symbols)
		a, b := 1, 1
		for i := range freq {
			freq[i] = a
			a, b = b, a+b
			if a > 1<<40 {
				a, b = 1, 1
			}
		}
		code := buildCode(freq, c.maxBits)
		kraft, full := 0, 1<<c.maxBits
		for s, l := range code.lens {
			if freq[s] > 0 && l == 0 {
				t.Fatalf("%+v: symbol %d has no code", c, s)
			}
			if int(l) > c.maxBits {
				t.Fatalf("%+v: code of %d bits", c, l)
			}
			if l > 0 {
				kraft += 1 << (c.maxBits - int(l))
			}
		}
		if kraft != full {
			t.Fatalf("%+v: Kraft sum %d/%d: the code is not complete", c, kraft, full)
		}
	}
}

// TestSkewedRoundTrip compresses data whose byte frequencies follow the
// Fibonacci sequence, and mostly-zero metadata-like blocks: they make the
// deepest trees, which is where length limiting matters.
func TestSkewedRoundTrip(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 99))
		b := make([]byte, 65536)
		fib := []int{1, 1}
		for len(fib) < 30 {
			fib = append(fib, fib[len(fib)-1]+fib[len(fib)-2])
		}
		total := fib[len(fib)-1]*2 - 1
		for i := range b {
			if seed%2 == 0 && rng.IntN(8) != 0 {
				continue // mostly zeros, like file system metadata
			}
			r := rng.IntN(total)
			s := 0
			for r >= fib[s] && s < len(fib)-1 {
				r -= fib[s]
				s++
			}
			b[i] = byte(s * 7)
		}
		comp := Compress(nil, b)
		got, err := io.ReadAll(stdflate.NewReader(bytes.NewReader(comp)))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("seed %d: round trip failed: %v", seed, err)
		}
	}
}

// TestFullWindow: with a 32 KiB window, data repeating at 20 KiB
// compresses to almost nothing and round-trips; with 4 KiB it cannot.
func TestFullWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	unit := make([]byte, 20000)
	for i := range unit {
		unit[i] = byte(rng.Uint32())
	}
	in := bytes.Repeat(unit, 3)
	wide := CompressWindow(nil, in, MaxWindowSize)
	narrow := Compress(nil, in)
	got, err := io.ReadAll(stdflate.NewReader(bytes.NewReader(wide)))
	if err != nil || !bytes.Equal(got, in) {
		t.Fatalf("round trip: %v", err)
	}
	if len(wide) > len(unit)+len(unit)/10 || len(narrow) < len(in)*9/10 {
		t.Fatalf("32 KiB window: %d bytes, 4 KiB window: %d bytes, of %d", len(wide), len(narrow), len(in))
	}
}
