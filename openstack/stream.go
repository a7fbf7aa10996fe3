package openstack

import (
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"hash"
	"io"
)

// Digests are the hashes Glance keeps of an image's data: checksum (md5)
// and os_hash_value (sha512, its default os_hash_algo).
type Digests struct {
	MD5, SHA512 string
	Size        int64
}

// hashingReader sends size bytes read from src (the image file, or a
// guest disk read as raw) and hashes them as they go, so that nothing is
// buffered and the hashes cost no second read. It can rewind to the
// start, which gophercloud does to re-send a body after renewing a token,
// and which resets the hashes with it.
type hashingReader struct {
	src      io.ReaderAt
	size     int64
	off      int64
	md5      hash.Hash
	sha      hash.Hash
	progress func(done, total int64)
}

func newHashingReader(src io.ReaderAt, size int64, progress func(done, total int64)) *hashingReader {
	return &hashingReader{src: src, size: size, md5: md5.New(), sha: sha512.New(), progress: progress}
}

func (h *hashingReader) Read(p []byte) (int, error) {
	if h.off >= h.size {
		return 0, io.EOF
	}
	if rest := h.size - h.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := h.src.ReadAt(p, h.off)
	if errors.Is(err, io.EOF) && n == len(p) {
		err = nil
	}
	if err == nil && n < len(p) {
		err = io.ErrUnexpectedEOF // the file shrank under us
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	h.md5.Write(p[:n])
	h.sha.Write(p[:n])
	h.off += int64(n)
	if h.progress != nil && n > 0 {
		h.progress(h.off, h.size)
	}
	return n, err
}

// Seek rewinds to the start; no other position is needed.
func (h *hashingReader) Seek(offset int64, whence int) (int64, error) {
	if offset != 0 || whence != io.SeekStart {
		return h.off, errors.New("upload body: only a rewind to the start is supported")
	}
	h.off = 0
	h.md5.Reset()
	h.sha.Reset()
	if h.progress != nil {
		h.progress(0, h.size)
	}
	return 0, nil
}

// Digests are the hashes of what was read; complete once Read has
// returned io.EOF.
func (h *hashingReader) Digests() Digests {
	return Digests{MD5: hex.EncodeToString(h.md5.Sum(nil)), SHA512: hex.EncodeToString(h.sha.Sum(nil)), Size: h.off}
}
