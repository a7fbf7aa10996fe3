package deflate

import "testing"

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
