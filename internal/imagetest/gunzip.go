package imagetest

import (
	"compress/gzip"
	"io"
	"os"
)

// Gunzip unpacks the gzip file src (a small image shipped in testdata)
// into dst, for tests and examples that must run without the tool that
// made it.
func Gunzip(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	z, err := gzip.NewReader(in)
	if err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, z); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
