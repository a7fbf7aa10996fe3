package zstdenc

import (
	"testing"

	"github.com/klauspost/compress/zstd"
)

// go test -bench . compares the encoder with klauspost's at its default
// level (what format/qcow2 used before) on the corpus, per cluster.

func BenchmarkEncode(b *testing.B) {
	clusters := loadCorpus(b)
	var e Encoder
	out := make([]byte, 0, MaxInput+64)
	var total int
	for b.Loop() {
		total = 0
		for _, c := range clusters {
			out, _ = e.Encode(out[:0], c)
			total += len(out)
		}
	}
	report(b, len(clusters), total)
}

func BenchmarkKlauspost(b *testing.B) {
	clusters := loadCorpus(b)
	k, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false),
		zstd.WithWindowSize(MaxInput), zstd.WithAllLitEntropyCompression(true))
	if err != nil {
		b.Fatal(err)
	}
	out := make([]byte, 0, MaxInput+64)
	var total int
	for b.Loop() {
		total = 0
		for _, c := range clusters {
			out = k.EncodeAll(c, out[:0])
			total += len(out)
		}
	}
	report(b, len(clusters), total)
}

func report(b *testing.B, clusters, total int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(clusters), "ns/cluster")
	b.ReportMetric(float64(total), "bytes")
}
