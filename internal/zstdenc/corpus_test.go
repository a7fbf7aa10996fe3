package zstdenc

import (
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// corpus is disk-like test input: the Go installation's files (its
// go and gofmt executables and the .go, .s and text files of its sources,
// about 20 MiB), laid end to end and cut into 64 KiB clusters, as a disk
// holds programs and text.
var corpus = sync.OnceValues(func() ([][]byte, error) {
	root := runtime.GOROOT()
	var disk []byte
	for _, name := range []string{"bin/go", "bin/gofmt"} {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			return nil, err
		}
		disk = append(disk, b...)
	}
	err := filepath.WalkDir(filepath.Join(root, "src", "net"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || len(disk) > 40<<20 {
			return err
		}
		b, err := os.ReadFile(p)
		disk = append(disk, b...)
		return err
	})
	if err != nil {
		return nil, err
	}
	var clusters [][]byte
	for len(disk) >= MaxInput {
		clusters = append(clusters, disk[:MaxInput:MaxInput])
		disk = disk[MaxInput:]
	}
	return clusters, nil
})

func loadCorpus(tb testing.TB) [][]byte {
	tb.Helper()
	c, err := corpus()
	if err != nil {
		tb.Fatalf("reading the Go installation as test input: %v", err)
	}
	return c
}

// syntheticInputs are the edge cases: every size class of the frame and
// literals headers, empty, all zeros, random, short-period repeats and
// random bytes copied from near behind (many short matches and repeats).
func syntheticInputs() [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	var ins [][]byte
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 100, 255, 256, 1023, 1024, 4096, 16383, 16384,
		65535 - 256, 65536 - 256, 65535, MaxInput} {
		copied, random, period := make([]byte, n), make([]byte, n), make([]byte, n)
		for i := range copied {
			if i > 64 && r.IntN(4) != 0 {
				copied[i] = copied[i-1-r.IntN(64)]
			} else {
				copied[i] = byte(r.IntN(16))
			}
			random[i] = byte(r.Uint32())
			period[i] = byte(i % 7)
		}
		ins = append(ins, copied, random, period, make([]byte, n))
	}
	return ins
}
