package redo

import (
	"maps"
	"slices"
	"sort"
)

// zeroPos is the log position of an extent that reads as zeros
// (WriteZeroes): it has no bytes in the log.
const zeroPos = -1

// extent is a run of device bytes [off, off+n) whose new contents are at
// pos in the log file (or zeros, pos zeroPos).
type extent struct {
	off, n, pos int64
}

func (e extent) end() int64 { return e.off + e.n }

// from is the part of e from device offset off on.
func (e extent) from(off int64) extent {
	d := off - e.off
	if e.pos != zeroPos {
		e.pos += d
	}
	return extent{off, e.n - d, e.pos}
}

// until is the part of e before device offset off.
func (e extent) until(off int64) extent {
	return extent{e.off, off - e.off, e.pos}
}

// joins reports whether next continues e on the device and in the log.
func (e extent) joins(next extent) bool {
	if e.end() != next.off {
		return false
	}
	if e.pos == zeroPos || next.pos == zeroPos {
		return e.pos == next.pos
	}
	return e.pos+e.n == next.pos
}

// chunkSize is the span of device bytes one index chunk covers: extents
// are cut at chunk boundaries, so an insert moves at most one chunk's
// entries whatever the number of writes.
const chunkSize = 1 << 20

// index maps device bytes to the log: the newest write of each byte.
// Memory grows with the number of writes (and one entry per MiB a large
// write covers), never with the bytes written.
type index struct {
	chunks map[int64][]extent // by off / chunkSize; each sorted, disjoint
}

func newIndex() *index { return &index{chunks: map[int64][]extent{}} }

func (x *index) empty() bool { return len(x.chunks) == 0 }

// insert records e, which replaces what the index held for its bytes.
func (x *index) insert(e extent) {
	for e.n > 0 {
		c := e.off / chunkSize
		cut := min(e.end(), (c+1)*chunkSize)
		x.chunks[c] = insertInto(x.chunks[c], e.until(cut))
		e = e.from(cut)
	}
}

// insertInto puts e into the sorted, disjoint list es, trimming what it
// overlaps and joining neighbours it continues.
func insertInto(es []extent, e extent) []extent {
	i := sort.Search(len(es), func(i int) bool { return es[i].end() > e.off })
	j := i
	for j < len(es) && es[j].off < e.end() {
		j++
	}
	var repl []extent
	k := i // where e lands
	if i < j && es[i].off < e.off {
		repl = append(repl, es[i].until(e.off))
		k++
	}
	repl = append(repl, e)
	if i < j && es[j-1].end() > e.end() {
		repl = append(repl, es[j-1].from(e.end()))
	}
	es = slices.Replace(es, i, j, repl...)
	if k+1 < len(es) && es[k].joins(es[k+1]) {
		es[k].n += es[k+1].n
		es = slices.Delete(es, k+1, k+2)
	}
	if k > 0 && es[k-1].joins(es[k]) {
		es[k-1].n += es[k].n
		es = slices.Delete(es, k, k+1)
	}
	return es
}

// overlapping calls fn for the extents overlapping [off, off+n), in
// order, clipped to that range.
func (x *index) overlapping(off, n int64, fn func(extent)) {
	end := off + n
	for c := off / chunkSize; c*chunkSize < end; c++ {
		es := x.chunks[c]
		i := sort.Search(len(es), func(i int) bool { return es[i].end() > off })
		for ; i < len(es) && es[i].off < end; i++ {
			e := es[i]
			if e.off < off {
				e = e.from(off)
			}
			if e.end() > end {
				e = e.until(end)
			}
			fn(e)
		}
	}
}

// sorted returns every extent in device order, joined across chunks.
func (x *index) sorted() []extent {
	var out []extent
	for _, c := range slices.Sorted(maps.Keys(x.chunks)) {
		for _, e := range x.chunks[c] {
			if n := len(out); n > 0 && out[n-1].joins(e) {
				out[n-1].n += e.n
				continue
			}
			out = append(out, e)
		}
	}
	return out
}
