// Package build installs an operating system from its installer ISO,
// unattended, into a new disk image: what virt-install --location and a
// person at the installer's screen do, with nothing typed.
//
// Linux installers are booted directly. Build reads the ISO in pure Go
// (package guestfs/iso9660), finds the installer's kernel and initrd by
// the layout of the distribution (FindLayout: Debian's d-i in install.amd/,
// Ubuntu's subiquity in casper/, the RHEL family's anaconda in
// images/pxeboot/; Options.Kernel and Options.Initrd name them for any
// other layout) and starts QEMU with them and the kernel arguments that
// make the installer run unattended (auto=true priority=critical,
// inst.ks=file:/ks.cfg, autoinstall), the serial console last. The answer
// file reaches the installer without a network or a second medium: it is
// appended to the initrd as a cpio archive (newc format, uncompressed),
// which the kernel unpacks over the initrd's own files, so d-i finds
// /preseed.cfg and anaconda /ks.cfg. Subiquity reads its autoinstall
// user-data through cloud-init, so it gets a NoCloud seed (package
// customize/seed) on a second CD-ROM instead.
//
// Windows installers (Options.OS "windows", windows.go) are booted from
// their ISO after the still empty disk; the autounattend.xml answer file
// goes on a small ISO 9660 medium that Build writes (package
// guestfs/iso9660, Joliet names), attached as a CD-ROM with an optional
// driver ISO (Options.Drivers, virtio-win): the disk and NIC are virtio
// with drivers, SATA and e1000 without. Setup's reboots are allowed; the
// answer file must power off at the end. Result.Properties names the
// Glance properties the image then needs (hw_disk_bus, hw_vif_model,
// os_type, hw_firmware_type). Options.Firmware UEFI boots OVMF with a
// private copy of its variable store; Options.ExtraISOs attach more
// CD-ROMs.
//
// A Backend runs the machine (a boot.Machine) and judges its console with
// boot's markers: QEMUBackend starts QEMU itself (boot.Run); LibvirtBackend
// asks a libvirtd over its unix socket (go-libvirt, pure Go) to run a
// transient, autodestroyed domain whose XML is built from libvirtxml's
// structs, follows the serial console in a file and ends on the domain's
// lifecycle events; AutoBackend picks libvirt when a libvirtd answers.
//
// The install writes a new qcow2 image of Options.Size (made by package
// format) beside the output, through the backend, and ends
// when the guest powers off; a failure marker on the console, QEMU
// exiting otherwise (the guest rebooted), the time-out or ctx ending fail
// the build with the console's tail. Options.AfterInstall then edits the
// disk (qimg build runs sysprep there), and the result is renamed into
// place or converted to a compressed qcow2 (package convert), so the
// output appears only when complete. The temporary directory (kernel,
// initrd, seed, answer medium, OVMF variables) and a partial disk are
// removed in every case, and QEMU stopped or the domain destroyed, also
// when ctx is cancelled (Ctrl-C).
//
// Security: the ISO is untrusted input. Its directory tree is read with
// the bounds of package iso9660, the kernel and initrd are copied out with
// a size limit, and the installer runs as a QEMU guest with boot's
// sandbox and console cleaning.
package build
