package zstdenc

import (
	"bytes"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestCodeTables(t *testing.T) {
	for v := uint32(0); v <= MaxInput; v++ {
		if c := llCode(v); llBase[c] > v || (int(c)+1 < len(llBase) && llBase[c+1] <= v) {
			t.Fatalf("literal length %d: code %d", v, c)
		}
		if v < 3 {
			continue
		}
		if c := mlCode(v); mlBase[c] > v || (int(c)+1 < len(mlBase) && mlBase[c+1] <= v) {
			t.Fatalf("match length %d: code %d", v, c)
		}
	}
	for c := range len(llBase) - 1 {
		if llBase[c]+1<<llBits[c] != llBase[c+1] {
			t.Errorf("literal length code %d: %d extra bits do not reach the next base", c, llBits[c])
		}
	}
	for c := range len(mlBase) - 1 {
		if mlBase[c]+1<<mlBits[c] != mlBase[c+1] {
			t.Errorf("match length code %d: %d extra bits do not reach the next base", c, mlBits[c])
		}
	}
}

// The predefined tables built from RFC 8878's distributions must put the
// symbols where its Appendix A's decoding tables have them.
func TestPredefinedCells(t *testing.T) {
	var tb fseTable
	tb.build(ofDefault, ofDefaultLog)
	for _, c := range []struct{ sym, pos int }{{0, 0}, {7, 6}, {7, 15}, {24, 31}, {28, 27}} {
		if tb.symCells[c.pos] != uint8(c.sym) {
			t.Errorf("offset state %d: symbol %d, want %d", c.pos, tb.symCells[c.pos], c.sym)
		}
	}
	tb.build(llDefault, llDefaultLog)
	for _, c := range []struct{ sym, pos int }{{0, 0}, {0, 1}, {25, 38}, {35, 60}, {32, 63}} {
		if tb.symCells[c.pos] != uint8(c.sym) {
			t.Errorf("literal length state %d: symbol %d, want %d", c.pos, tb.symCells[c.pos], c.sym)
		}
	}
}

func newDecoder(t testing.TB) *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func roundTrip(t testing.TB, e *Encoder, d *zstd.Decoder, in []byte) []byte {
	t.Helper()
	frame, err := e.Encode(nil, in)
	if err != nil {
		t.Fatalf("input of %d bytes: %v", len(in), err)
	}
	got, err := d.DecodeAll(frame, nil)
	if err != nil {
		t.Fatalf("input of %d bytes: the frame does not decode: %v", len(in), err)
	}
	if !bytes.Equal(got, in) {
		t.Fatalf("input of %d bytes: decoded %d bytes that differ", len(in), len(got))
	}
	return frame
}

func TestEncodeDecodes(t *testing.T) {
	var e Encoder
	d := newDecoder(t)
	for _, in := range syntheticInputs() {
		roundTrip(t, &e, d, in)
	}
}

// TestEncodeCorpus checks every frame of the disk-like corpus and that
// together they are no larger than klauspost's at its default level with
// format/qcow2's former options (the encoder replaces it there).
func TestEncodeCorpus(t *testing.T) {
	var e Encoder
	d := newDecoder(t)
	k, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false),
		zstd.WithWindowSize(MaxInput), zstd.WithAllLitEntropyCompression(true))
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs, raw := 0, 0, 0
	for _, c := range loadCorpus(t) {
		ours += len(roundTrip(t, &e, d, c))
		theirs += len(k.EncodeAll(c, nil))
		raw += len(c)
	}
	t.Logf("%d bytes in: %d out, klauspost %d (%.4f)", raw, ours, theirs, float64(ours)/float64(theirs))
	if ours > theirs+theirs/200 {
		t.Errorf("%d bytes, more than klauspost's %d", ours, theirs)
	}
}

func TestEncodeRefusesLargeInput(t *testing.T) {
	var e Encoder
	dst := []byte("kept")
	out, err := e.Encode(dst, make([]byte, MaxInput+1))
	if err == nil || string(out) != "kept" {
		t.Fatalf("input over MaxInput: %q, %v", out, err)
	}
}
