// Package boot proves that an image boots: it starts the image under QEMU
// and watches its serial console for the lines that mean success or
// failure.
//
// Local boots on this machine with qemu-system-x86_64: KVM when /dev/kvm
// opens for reading and writing, TCG (multi-threaded) otherwise. The image
// is never written: the machine runs on a qcow2 overlay, made by package
// format in a private temporary directory, whose backing file is the
// image. A seed (a NoCloud "cidata" or OpenStack "config-2" drive) is
// attached read-only, a CD-ROM when it is ISO 9660. The guest gets one
// virtio NIC on QEMU's user network with a random locally administered MAC
// address outside QEMU's default range, so configuration bound to the MAC
// of the machine the image was made on cannot bring the network up.
//
// The console is QEMU's first serial port, read from a pipe. A Watcher
// decides from it, line by line: the boot succeeds when every expected
// marker has appeared (by default the login prompt and cloud-init's
// "Cloud-init v. ... finished" line; Options.Expect adds regular
// expressions, such as a marker the user-data prints), and fails at once
// on a failure marker (a kernel panic or oops, Windows' stop errors such
// as INACCESSIBLE_BOOT_DEVICE on the serial port, an emergency or initramfs
// shell, a cloud-init traceback, error or failed module; with a seed,
// cloud-init finishing without a data source). The phases (boot loader,
// kernel, initramfs, init, cloud-init start, login prompt, cloud-init
// finished) are timed from QEMU's start. The Watcher and the Console that
// cleans and feeds it know nothing of QEMU, so a boot test elsewhere (an
// OpenStack server's console log) uses them as they are.
//
// Cleaning up is not optional: whether the boot succeeds, fails, times
// out or ctx is cancelled, QEMU is asked to quit over QMP (the unix socket
// in the temporary directory), killed if it has not exited within five
// seconds, and the directory is removed before Local returns. QEMU runs in
// its own process group, so a Ctrl-C on the terminal reaches qimg, which
// stops it, and the kernel kills it if qimg itself dies (PR_SET_PDEATHSIG).
//
// Run is the other use of the same machinery: a Machine whose disk is
// written in place (an installer's target), with an installer ISO as a
// CD-ROM, an optional seed and a directly booted kernel, runs until its
// guest powers off. QEMU reports the power-off itself, as a SHUTDOWN event
// (reason guest-shutdown) on a second QMP socket on which it waits for
// Run before the guest starts, so a guest that reboots instead (-no-reboot
// makes QEMU exit then too) is told apart and fails. Failure markers, the
// time-out, ctx and the clean-up work as for Local.
//
// Security: the guest is untrusted code and its console untrusted text.
// QEMU runs with -sandbox (no spawning, no privilege changes) and without
// default devices. Console lines are cut at MaxLine bytes, only the last
// TailLines are kept, and terminal escape sequences and control characters
// are removed before a line is matched, kept or shown (CleanLine), so a
// guest cannot drive the terminal of the person running the test; the raw
// bytes go only to the log file the caller asked for.
package boot
