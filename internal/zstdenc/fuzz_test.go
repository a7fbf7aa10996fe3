package zstdenc

import "testing"

// FuzzEncode checks that every frame decodes to its input.
func FuzzEncode(f *testing.F) {
	for _, in := range syntheticInputs() {
		if len(in) <= 4096 {
			f.Add(in)
		}
	}
	var e Encoder
	d := newDecoder(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		roundTrip(t, &e, d, in[:min(len(in), MaxInput)])
	})
}
