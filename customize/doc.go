// Package customize edits a guest filesystem the way virt-customize
// does, in pure Go on a guestfs.WritableFileSystem, with no appliance:
// the file options (upload, copy-in, write, append-line, mkdir, delete,
// move, link, chmod, chown, touch) and the system ones that only edit
// configuration files (hostname, root-password and password with
// SHA-512 crypt, ssh-inject, timezone, firstboot-command and firstboot
// through a systemd oneshot unit, cloud-init-datasources, growpart,
// cloud-config drop-ins checked as cloud-init reads them), applied in
// command-line order and committed all at once. Options that
// would run programs in the guest (run-command, install, update) are
// refused with what to use instead.
//
// An Op is one option as the command line gives it (Parse checks its
// syntax); Apply runs a list of them on a Guest and commits, or, on the
// first error, discards every change so the image is left as it was.
// Guest paths are absolute paths inside the guest; symbolic links in them
// resolve inside the guest (an absolute target starts at the guest's
// root), never on the host.
//
// New files are owned by root:root with mode 0644 (directories 0755)
// unless an option says otherwise; a replaced file keeps its owner,
// mode and attributes. On an SELinux guest (/etc/selinux/config not
// disabled) that gets new files, /.autorelabel is created so the guest
// labels them at its next boot, and Apply says so.
package customize
