package report

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/image"
)

// MapEntry is one line of qemu-img map.
type MapEntry struct {
	Start, Length int64
	Depth         int
	Present       bool
	Zero          bool
	Data          bool
	HasOffset     bool
	Offset        int64
	Filename      string // file holding the data when HasOffset
}

// layer is one image of a backing chain, opened on its own.
type layer struct {
	name string // as qemu-img names it: the path given, then path_combine
	img  image.Image
	host image.HostLayout
	raw  bool // a raw file: guest offsets are file offsets
	// opaque: QEMU's driver reports no block status (VHDX), so qemu-img
	// map shows the whole image as data without offsets.
	opaque bool
	file   *os.File // the file whose holes show through data runs (host.HoleFile)
	// dataName names the file holding the layer's data when host.Files
	// does not say otherwise.
	dataName string
	backing  bool  // the image names a backing file
	size     int64 // virtual size (a raw file's size rounded up to sectors)
}

// Chain is a backing chain opened layer by layer, as qemu-img map walks it.
type Chain struct {
	layers []*layer
	opened format.Chain
}

// OpenChain opens path (format "" probes) and every backing file below it,
// each layer without its backing so that map can tell the layers apart.
// With untrusted, an image that names a backing or data file is refused.
func OpenChain(path, fmtName string, untrusted bool) (*Chain, error) {
	o := format.OpenOptions{Format: fmtName}
	if untrusted {
		o.Backing = image.RefuseBacking
	}
	opened, err := format.OpenChain(path, o)
	if err != nil {
		var be *format.BackingError
		if errors.As(err, &be) {
			return nil, fmt.Errorf("Could not open backing file: Could not open '%s': %w", be.Name, be.Err)
		}
		return nil, err
	}
	c := &Chain{opened: opened}
	for _, ol := range opened {
		l, err := newLayer(ol)
		if err != nil {
			return nil, errors.Join(err, c.Close())
		}
		c.layers = append(c.layers, l)
	}
	return c, nil
}

func newLayer(ol format.Layer) (*layer, error) {
	l := &layer{name: ol.Name, img: ol.Image, dataName: ol.Name, size: ol.Image.Size()}
	if m, ok := ol.Image.(image.Mapper); ok {
		var err error
		if l.host, err = m.HostLayout(); err != nil {
			return nil, err
		}
	}
	l.raw, l.opaque = l.host.Passthrough, l.host.NoBlockStatus
	if b, ok := ol.Image.(image.BackingNamer); ok {
		name, _ := b.BackingFile()
		l.backing = name != ""
	}
	if n := len(l.host.Files); n > 0 && l.host.Files[n-1].End >= l.size {
		l.dataName = l.host.Files[n-1].Name
	}
	if l.host.HoleFile != "" {
		var err error
		if l.file, err = os.Open(l.host.HoleFile); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Close closes every layer.
func (c *Chain) Close() error {
	var errs []error
	errs = append(errs, c.opened.Close())
	for _, l := range c.layers {
		if l.file != nil {
			errs = append(errs, l.file.Close())
		}
	}
	return errors.Join(errs...)
}

// Size is the virtual size of the top image.
func (c *Chain) Size() int64 { return c.layers[0].size }

// status is get_block_status: the status of the run at offset, taken from
// the first layer that defines it.
func (c *Chain) status(offset, n int64) (MapEntry, error) {
	for depth, l := range c.layers {
		n = min(n, l.size-offset)
		if l.raw && offset >= l.img.Size() {
			// The sector tail QEMU adds to a raw file reads as zeros.
			return MapEntry{Start: offset, Length: n, Depth: depth, Present: true, Zero: true,
				HasOffset: true, Offset: offset, Filename: l.dataName}, nil
		}
		if l.opaque {
			return MapEntry{Start: offset, Length: n, Depth: depth, Present: true, Data: true}, nil
		}
		e, err := l.img.Extent(offset, min(n, l.img.Size()-offset))
		if err != nil {
			return MapEntry{}, err
		}
		n = e.Length
		m := MapEntry{Start: offset, Length: n, Depth: depth, Filename: l.dataName}
		if l.raw { // the file layer reports data or zero, offset valid
			m.Present, m.Data, m.Zero = true, e.Data, !e.Data
			m.HasOffset, m.Offset = true, offset
			return m, nil
		}
		if e.Allocated {
			m.Present = true
			m.Data, m.Zero = e.Data, e.Zero
			if e.HostOffset >= 0 {
				m.HasOffset, m.Offset = true, e.HostOffset
				m.Filename = l.fileAt(offset)
				if l.file != nil && e.Data {
					m, err = l.fileStatus(m)
					if err != nil {
						return MapEntry{}, err
					}
				}
			}
			return m, nil
		}
		if !l.backing || depth+1 < len(c.layers) && offset >= c.layers[depth+1].size {
			// The chain ends here: zeros, with the host offset of an
			// unallocated subcluster's cluster as QEMU keeps it.
			m.Zero = true
			if e.HostOffset >= 0 {
				m.HasOffset, m.Offset = true, e.HostOffset
			}
			return m, nil
		}
	}
	return MapEntry{}, fmt.Errorf("backing chain ended early")
}

// fileAt names the file that holds the layer's data at guest offset off.
func (l *layer) fileAt(off int64) string {
	for _, f := range l.host.Files {
		if off < f.End {
			return f.Name
		}
	}
	return l.dataName
}

// fileStatus refines a data run of a metadata-preallocated qcow2 layer with
// the file system's view of its host range: holes and space past the end
// of the file read as zeros.
func (l *layer) fileStatus(m MapEntry) (MapEntry, error) {
	st, err := l.file.Stat()
	if err != nil {
		return m, err
	}
	if m.Offset >= st.Size() {
		m.Zero = true
		return m, nil
	}
	fd := int(l.file.Fd())
	data, err := unix.Seek(fd, m.Offset, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO):
		m.Zero = true
		m.Length = min(m.Length, st.Size()-m.Offset)
		return m, nil
	case err != nil:
		return m, nil
	case data > m.Offset:
		m.Zero = true
		m.Length = min(m.Length, data-m.Offset)
		return m, nil
	}
	if hole, err := unix.Seek(fd, m.Offset, unix.SEEK_HOLE); err == nil && hole > m.Offset {
		m.Length = min(m.Length, hole-m.Offset)
	}
	return m, nil
}

func mergeable(cur, next MapEntry) bool {
	if cur.Length == 0 || cur.Zero != next.Zero || cur.Data != next.Data || cur.Depth != next.Depth || cur.Present != next.Present {
		return false
	}
	if cur.HasOffset != next.HasOffset {
		return false
	}
	if cur.HasOffset && (cur.Filename != next.Filename || cur.Offset+cur.Length != next.Offset) {
		return false
	}
	return true
}

// Map calls emit with the merged map entries of [start, start+length) in
// order, as qemu-img map produces them. emit's error stops the walk.
func (c *Chain) Map(start, length int64, emit func(MapEntry) error) error {
	end := min(c.Size(), start+length)
	cur := MapEntry{Start: start}
	for cur.Start+cur.Length < end {
		off := cur.Start + cur.Length
		next, err := c.status(off, end-off)
		if err != nil {
			return err
		}
		if mergeable(cur, next) {
			cur.Length += next.Length
			continue
		}
		if cur.Length > 0 {
			if err := emit(cur); err != nil {
				return err
			}
		}
		cur = next
	}
	if cur.Length > 0 {
		return emit(cur)
	}
	return nil
}

// ErrMapHuman is qemu-img's complaint when the human map cannot show a run.
var ErrMapHuman = errors.New("File contains external, encrypted or compressed clusters.")

// MapJSON writes the map as qemu-img map --output=json.
func (c *Chain) MapJSON(w io.Writer, start, length int64) error {
	first := true
	if _, err := io.WriteString(w, "["); err != nil {
		return err
	}
	err := c.Map(start, length, func(e MapEntry) error {
		var b strings.Builder
		if !first {
			b.WriteString(",\n")
		}
		first = false
		fmt.Fprintf(&b, `{ "start": %d, "length": %d, "depth": %d, "present": %t, "zero": %t, "data": %t`,
			e.Start, e.Length, e.Depth, e.Present, e.Zero, e.Data)
		if e.HasOffset {
			fmt.Fprintf(&b, `, "offset": %d`, e.Offset)
		}
		b.WriteString("}")
		_, err := io.WriteString(w, b.String())
		return err
	})
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, "]\n")
	return err
}

// MapHuman writes the map as qemu-img map prints it for people: the runs
// that hold data, with where they are stored.
func (c *Chain) MapHuman(w io.Writer, start, length int64) error {
	if _, err := fmt.Fprintf(w, "%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to", "File"); err != nil {
		return err
	}
	return c.Map(start, length, func(e MapEntry) error {
		if e.Data && !e.HasOffset {
			return ErrMapHuman
		}
		if e.Data && !e.Zero {
			_, err := fmt.Fprintf(w, "%-16s%-16s%-16s%s\n", hexAlt(e.Start), hexAlt(e.Length), hexAlt(e.Offset), e.Filename)
			return err
		}
		return nil
	})
}

// hexAlt is C's "%#x": 0 stays "0".
func hexAlt(v int64) string {
	if v == 0 {
		return "0"
	}
	return fmt.Sprintf("%#x", v)
}
