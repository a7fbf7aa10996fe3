package ntfs

import (
	"fmt"
	"io"
	"sort"
)

// run maps length clusters of an attribute, from VCN vcn, to the volume
// from cluster lcn; lcn is -1 for a sparse run (zeros).
type run struct {
	vcn, lcn, length int64
}

// decodeRuns decodes a mapping pairs array starting at VCN start. Every
// run must lie inside the volume's clusters.
func decodeRuns(b []byte, start, clusters int64) ([]run, error) {
	var runs []run
	vcn, lcn := start, int64(0)
	for i := 0; i < len(b) && b[i] != 0; {
		lenBytes, offBytes := int(b[i]&0xF), int(b[i]>>4)
		i++
		if lenBytes == 0 || lenBytes > 8 || offBytes > 8 || i+lenBytes+offBytes > len(b) {
			return nil, fmt.Errorf("run header %#x at %d", b[i-1], i-1)
		}
		length := int64(unsignedLE(b[i : i+lenBytes]))
		i += lenBytes
		if length <= 0 || length > clusters || vcn > clusters-length {
			return nil, fmt.Errorf("run of %d clusters at VCN %d in a volume of %d", length, vcn, clusters)
		}
		r := run{vcn: vcn, lcn: -1, length: length}
		if offBytes > 0 {
			lcn += signedLE(b[i : i+offBytes])
			i += offBytes
			if lcn < 0 || lcn > clusters-length {
				return nil, fmt.Errorf("run of %d clusters at cluster %d outside the volume of %d", length, lcn, clusters)
			}
			r.lcn = lcn
		}
		runs = append(runs, r)
		vcn += length
	}
	return runs, nil
}

func unsignedLE(b []byte) uint64 {
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func signedLE(b []byte) int64 {
	v := int64(unsignedLE(b))
	shift := 64 - 8*uint(len(b))
	return v << shift >> shift
}

// stream reads an attribute's value: resident bytes, or its runs, with
// zeros past the initialized size and in sparse runs.
type stream struct {
	f        *FS
	what     string
	res      bool
	resident []byte
	runs     []run
	size     int64
	init     int64
}

func (f *FS) newStream(a *attr, what string) *stream {
	return &stream{f: f, what: what, res: a.resident, resident: a.value, runs: a.runs, size: a.dataSize, init: a.initSize}
}

// ReadAt reads from the stream; reading past its end returns io.EOF.
func (s *stream) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, s.f.corrupt("%s: read at %d", s.what, off)
	}
	if off >= s.size {
		return 0, io.EOF
	}
	want := len(p)
	if int64(want) > s.size-off {
		p = p[:s.size-off]
	}
	if s.res {
		n := copy(p, s.resident[min(off, int64(len(s.resident))):])
		clear(p[n:])
		return s.done(len(p), want)
	}
	done := 0
	for done < len(p) {
		n, err := s.readChunk(p[done:], off+int64(done))
		if err != nil {
			return done, err
		}
		done += n
	}
	return s.done(done, want)
}

func (s *stream) done(n, want int) (int, error) {
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

// readChunk reads from the one run holding off, at most to its end.
func (s *stream) readChunk(p []byte, off int64) (int, error) {
	if off >= s.init {
		clear(p)
		return len(p), nil
	}
	p = p[:min(int64(len(p)), s.init-off)]
	cs := s.f.clusterSize
	vcn := off / cs
	i := sort.Search(len(s.runs), func(i int) bool { return s.runs[i].vcn+s.runs[i].length > vcn })
	if i == len(s.runs) || s.runs[i].vcn > vcn {
		return 0, s.f.corrupt("%s: no run maps cluster %d of the data", s.what, vcn)
	}
	r := s.runs[i]
	p = p[:min(int64(len(p)), (r.vcn+r.length)*cs-off)]
	if r.lcn < 0 {
		clear(p)
		return len(p), nil
	}
	if err := s.f.readAt(p, r.lcn*cs+off-r.vcn*cs, s.what); err != nil {
		return 0, err
	}
	return len(p), nil
}
