package guestfs

import (
	"context"
	"errors"
	"io/fs"

	"github.com/qimg/qimg/guestfs/redo"
	"github.com/qimg/qimg/image"
)

// RedoLogPath is where qimg keeps the redo log of an edit of the image
// at imagePath: beside it, as IMAGE.qimg-redo.
func RedoLogPath(imagePath string) string { return imagePath + ".qimg-redo" }

// redoTarget names a device for its redo log.
func (d *Disk) redoTarget(dv *Device) redo.Target {
	t := redo.Target{Device: dv.Name, Offset: -1, Size: dv.Image.Size(), ImageSize: d.Devices[0].Size,
		ID: dv.Content.Type + " UUID=" + dv.Content.UUID}
	switch {
	case dv.Kind == KindDisk:
		t.Offset = 0
	case dv.Partition != nil:
		t.Offset = dv.Partition.Start
	case dv.LV != nil:
		t.ID += " LV=" + dv.LV.UUID
	}
	return t
}

// pending reads the redo log at path and finds the device it is for.
// It returns nil when there is no committed log (an incomplete one is
// reported by incomplete).
func (d *Disk) pending(path string) (p *redo.Pending, dv *Device, incomplete bool, err error) {
	p, err = redo.Read(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil, false, nil
	case errors.Is(err, redo.ErrIncomplete):
		return nil, nil, true, nil
	case err != nil:
		return nil, nil, false, err
	}
	dv, ok := d.Device(p.Target.Device)
	if ok && dv.Image != nil && d.redoTarget(dv) == p.Target {
		return p, dv, false, nil
	}
	p.Close()
	ours := "no such device"
	if ok && dv.Image != nil {
		ours = d.redoTarget(dv).String()
	}
	return nil, nil, false, image.FileErrorf(d.Name, "the redo log %s holds an interrupted edit of %v, which does not match this image (%s): qimg will not apply it; if the image was replaced or resized, move the log away: %w",
		path, p.Target, ours, image.ErrInvalidArgument)
}

// Recover finishes an edit that a crash interrupted, before anything
// else edits the image: a committed redo log at path is replayed onto
// its device and removed; one that never committed (none of it reached
// the image) is removed. It returns the device replayed, "" when none.
// A log that does not match the image (another image, resized or
// repartitioned since) is an error naming both, and is left alone. The
// image must have been opened writable.
func (d *Disk) Recover(ctx context.Context, path string, opts ...EditOption) (string, error) {
	var c editConfig
	for _, o := range opts {
		o(&c)
	}
	p, dv, incomplete, err := d.pending(path)
	if incomplete {
		return "", redo.Remove(path)
	}
	if p == nil {
		return "", err
	}
	w, ok := dv.Image.(image.WritableImage)
	if !ok {
		p.Close()
		return "", image.FileErrorf(d.Name, "%s: the image was opened read-only, so the interrupted edit in %s cannot be finished: %w", dv.Name, path, image.ErrInvalidArgument)
	}
	if err := p.Replay(ctx, w, redo.WithTrace(c.trace)); err != nil {
		p.Close()
		return "", err
	}
	return dv.Name, nil
}

// ViewRedoLog shows the image as a committed redo log at path leaves it,
// without writing anything: its device reads through the log, in memory
// (as a journal is replayed in memory for reading). It returns the
// device shown ("" when there is no committed log: an incomplete one
// changed nothing) and a function that closes the log, to call when done
// with the Disk. A log that does not match the image is an error, as
// for Recover.
func (d *Disk) ViewRedoLog(path string) (string, func() error, error) {
	p, dv, _, err := d.pending(path)
	if p == nil {
		return "", func() error { return nil }, err
	}
	v, err := p.View(dv.Image)
	if err != nil {
		p.Close()
		return "", nil, err
	}
	dv.Image = v
	if dv.Content, err = probe(v, d.Name, dv.Name); err != nil {
		p.Close()
		return "", nil, err
	}
	return dv.Name, p.Close, nil
}
