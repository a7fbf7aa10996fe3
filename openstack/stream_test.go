package openstack

import (
	"bytes"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

func digestsOf(b []byte) Digests {
	m, s := md5.Sum(b), sha512.Sum512(b)
	return Digests{MD5: hex.EncodeToString(m[:]), SHA512: hex.EncodeToString(s[:]), Size: int64(len(b))}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// goroutinesSettle waits for the goroutine count to come back to want.
func goroutinesSettle(t *testing.T, want int) {
	t.Helper()
	for range 100 {
		if runtime.NumGoroutine() <= want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%d goroutines left running, want %d", runtime.NumGoroutine(), want)
}

// TestHashingReader: what is read, in any read sizes, is the source and
// is what the digests describe; a rewind in the middle starts over; Close
// in the middle stops every goroutine.
func TestHashingReader(t *testing.T) {
	base := runtime.NumGoroutine()
	for _, size := range []int{0, 1, chunkSize - 1, chunkSize, 3*chunkSize + 12345, (poolChunks + 3) * chunkSize} {
		data := randomBytes(size)
		var progressed int64
		h := newHashingReader(bytes.NewReader(data), int64(size), func(done, total int64) { progressed = done })
		// Half a pass, then a rewind, then the whole.
		io.CopyN(io.Discard, h, int64(size/2))
		if _, err := h.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if _, err := io.CopyBuffer(&got, h, make([]byte, 32<<10)); err != nil {
			t.Fatal(err)
		}
		want := digestsOf(data)
		want.MD5 = "" // an upload computes sha512 only
		if !bytes.Equal(got.Bytes(), data) || h.Digests() != want || progressed != int64(size) {
			t.Errorf("size %d: data equal %v, digests %+v want %+v, progress %d", size, bytes.Equal(got.Bytes(), data), h.Digests(), want, progressed)
		}
		h.Close()
		// Close in the middle of a pass.
		h2 := newHashingReader(bytes.NewReader(data), int64(size), nil)
		io.CopyN(io.Discard, h2, int64(size/3))
		h2.Close()
	}
	goroutinesSettle(t, base)
}

// shortReader fails after some bytes, as a file that shrank.
type shortReader struct{ n int64 }

func (s shortReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > s.n {
		return int(max(0, s.n-off)), io.EOF
	}
	return len(p), nil
}

func TestHashingReaderSourceShrank(t *testing.T) {
	base := runtime.NumGoroutine()
	h := newHashingReader(shortReader{5 * chunkSize / 2}, 4*chunkSize, nil)
	_, err := io.Copy(io.Discard, h)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("got %v, want ErrUnexpectedEOF", err)
	}
	h.Close()
	goroutinesSettle(t, base)
}

func TestCopyHashed(t *testing.T) {
	data := randomBytes(5*chunkSize + 7)
	var out bytes.Buffer
	d, err := copyHashed(&out, bytes.NewReader(data), int64(len(data)), &hashers{md5: md5.New(), sha: sha512.New()}, nil)
	if err != nil || d != digestsOf(data) || !bytes.Equal(out.Bytes(), data) {
		t.Errorf("copyHashed: %v, %+v", err, d)
	}
}

// A download computes one digest the record holds (sha512 when there is
// an os_hash_value of that algorithm, else md5), and verify compares what
// was computed.
func TestHashersForSave(t *testing.T) {
	data := randomBytes(3*chunkSize + 1)
	want := digestsOf(data)
	for _, c := range []struct {
		record  Image
		md5, sh bool
	}{
		{Image{"checksum": want.MD5, "os_hash_algo": "sha512", "os_hash_value": want.SHA512, "size": float64(len(data))}, false, true},
		{Image{"os_hash_algo": "sha512", "os_hash_value": want.SHA512, "size": float64(len(data))}, false, true},
		{Image{"checksum": want.MD5, "size": float64(len(data))}, true, false},
		{Image{"checksum": want.MD5, "os_hash_algo": "sha256", "os_hash_value": "ab", "size": float64(len(data))}, true, false},
	} {
		d, err := copyHashed(io.Discard, bytes.NewReader(data), int64(len(data)), newHashersFor(c.record), nil)
		if err != nil || (d.MD5 != "") != c.md5 || (d.SHA512 != "") != c.sh {
			t.Fatalf("%v: digests %+v, %v", c.record, d, err)
		}
		if err := verify(c.record, d); err != nil {
			t.Errorf("verify: %v", err)
		}
		bad := Image{}
		for k, v := range c.record {
			bad[k] = v
		}
		bad["checksum"], bad["os_hash_value"] = damaged(want.MD5), damaged(want.SHA512)
		if c.sh {
			delete(bad, "checksum")
		}
		if err := verify(bad, d); !errors.Is(err, ErrHashMismatch) {
			t.Errorf("verify of a damaged record: %v", err)
		}
	}
}

// damaged changes a hex digest's first digit.
func damaged(hex string) string {
	if hex[0] == '0' {
		return "1" + hex[1:]
	}
	return "0" + hex[1:]
}

// An upload hashes sha512 only; a record without one (an old Glance, or
// another os_hash_algo) gets its md5 from a second pass over the source.
func TestCompleteDigests(t *testing.T) {
	data := randomBytes(2*chunkSize + 3)
	want := digestsOf(data)
	sent := Digests{SHA512: want.SHA512, Size: want.Size}
	for _, c := range []struct {
		record  Image
		wantMD5 string
	}{
		{Image{"checksum": want.MD5, "os_hash_algo": "sha512", "os_hash_value": want.SHA512}, ""},
		{Image{"checksum": want.MD5}, want.MD5},
		{Image{"checksum": want.MD5, "os_hash_algo": "sha256", "os_hash_value": "ab"}, want.MD5},
	} {
		d, err := completeDigests(c.record, bytes.NewReader(data), int64(len(data)), sent)
		if err != nil || d.MD5 != c.wantMD5 || d.SHA512 != want.SHA512 {
			t.Errorf("%v: %+v, %v", c.record, d, err)
		}
		if err := verify(c.record, d); err != nil {
			t.Errorf("verify %v: %v", c.record, err)
		}
	}
	if _, err := completeDigests(Image{"checksum": want.MD5}, shortReader{10}, 100, sent); err == nil {
		t.Error("a source that shrank: no error")
	}
}
