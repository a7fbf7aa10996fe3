package deflate

import (
	"testing"

	"github.com/qimg/qimg/internal/rfc1951"
)

// TestDistCode compares the computed distance codes with RFC 1951's
// table of base distances, for every distance.
func TestDistCode(t *testing.T) {
	want := codeTable(rfc1951.DistBase[:], MaxWindowSize)
	for d := 1; d <= MaxWindowSize; d++ {
		if got := distCode(d); got != int(want[d]) {
			t.Fatalf("distCode(%d) = %d, want %d", d, got, want[d])
		}
	}
}
