package zstdenc_test

import (
	"bytes"
	"fmt"

	"github.com/klauspost/compress/zstd"

	"github.com/qimg/qimg/internal/zstdenc"
)

// Compress one cluster and read it back with any zstd decoder.
func Example() {
	cluster := bytes.Repeat([]byte("a disk block of text; "), 2978) // 65516 bytes
	var e zstdenc.Encoder
	frame, err := e.Encode(nil, cluster)
	if err != nil {
		fmt.Println(err)
		return
	}
	d, _ := zstd.NewReader(nil)
	back, err := d.DecodeAll(frame, nil)
	fmt.Println(len(cluster), "bytes in,", len(frame), "out; round trip:", err == nil && bytes.Equal(back, cluster))
	// Output: 65516 bytes in, 41 out; round trip: true
}
