package ext4

// maxLinkLen bounds a symbolic link's target, as Linux's PATH_MAX does;
// a longer one could only come from a hostile image.
const maxLinkLen = 4096

// readlink returns a symbolic link's target. Short targets live in i_block
// itself (a "fast" symlink: no data blocks); with inline_data a target
// may also be inline; longer targets are file data.
func (f *FS) readlink(in *Inode) (string, error) {
	if in.Size == 0 || in.Size > maxLinkLen {
		return "", f.corrupt("symbolic link %d of %d bytes", in.Ino, in.Size)
	}
	n := int(in.Size)
	if in.Flags&FlagInlineData != 0 {
		data, err := f.inlineData(in)
		if err != nil {
			return "", err
		}
		return string(data[:n]), nil
	}
	if f.fastSymlink(in) {
		return string(in.block[:n]), nil
	}
	buf := make([]byte, n)
	if err := f.readData(in, buf, 0); err != nil {
		return "", err
	}
	return string(buf), nil
}

// fastSymlink applies the kernel's test: a link whose target fits in
// i_block and that owns no blocks but its external attribute block.
func (f *FS) fastSymlink(in *Inode) bool {
	if in.Size >= uint64(len(in.block)) {
		return false
	}
	var ea uint64
	if in.FileACL != 0 {
		ea = uint64(f.sb.blockSize / 512)
	}
	return in.Blocks <= ea
}
