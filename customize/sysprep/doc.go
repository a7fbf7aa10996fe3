// Package sysprep prepares a Linux guest image to be cloned, as
// virt-sysprep does, in pure Go on a guestfs.WritableFileSystem: named
// operations (machine-id, ssh-hostkeys, logfiles, net-hwaddr, ...)
// remove or reset what makes the guest one machine, and every change is
// logged ("  Removing /etc/ssh/ssh_host_rsa_key") and committed at once
// (on an error, nothing is).
//
// The operations keep virt-sysprep's names and default set where
// virt-sysprep has them, and add what cloud images need: cloud-init
// (its per-instance state, so it runs again), netplan,
// systemd-networkd and network-interfaces (configuration bound to the
// MAC addresses of the old NICs), random-seed and nozeroconf (the Red
// Hat family's link-local route, which hides the metadata service).
// Operations that need programs run inside the guest (rebuilding the CA
// store, LVM UUIDs, user scripts) are not done, and asking for one says
// why.
//
// Choices that differ from virt-sysprep, and why:
//   - net-nmconn removes MAC addresses from NetworkManager keyfiles
//     rather than deleting the keyfiles, so static addresses survive.
//   - net-hwaddr also removes MACADDR= (an address clones would share)
//     and works on every distribution, SUSE's /etc/sysconfig/network
//     included.
//   - Configuration cloud-init generated (50-cloud-init.yaml,
//     cloud-init-*.nmconnection, 10-cloud-init-*.network,
//     interfaces.d/50-cloud-init) is removed only when cloud-init will
//     write it again at the next boot (installed, not disabled, network
//     configuration not turned off); otherwise it is edited like any
//     other file.
//   - A netplan interface matched by MAC address alone is rewritten to
//     match a name glob of its kind ("en*", "eth*", "wl*") and loses
//     set-name; a systemd-networkd .network matched by MAC address alone
//     matches Type=ether. On a clone with one NIC per kind this brings
//     the network up; with several, the first configuration wins for all
//     of them.
//   - selinux-relabel asks for a relabel only when files were created:
//     edits keep a file's extended attributes, so its SELinux label.
//   - pacct-log empties the current accounting file instead of removing
//     and recreating it, which keeps its label.
//
// Only the root filesystem is prepared: files on other filesystems the
// guest mounts (a separate /var) are not reached, and the qimg command
// warns about them. Guest names never leave the guest: links resolve
// inside it, a link found in a directory being cleaned is removed, not
// followed, and globs and walks visit a bounded number of entries, so a
// corrupt or looping directory tree ends in an error, not a hang.
// Configuration files larger than 1 MiB are left alone with a note.
package sysprep
