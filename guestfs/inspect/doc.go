// Package inspect finds the operating systems inside a guest image, as
// virt-inspector does, without a kernel or appliance: for each root
// filesystem, its type (linux or windows), distribution, version,
// product name, architecture, hostname, package format and manager, and
// where it mounts its filesystems.
//
// Inspect takes a *guestfs.Disk and looks at every filesystem qimg reads
// (guestfs.Disk.Mountable). A Linux root has /etc and /bin or /usr/bin:
// the distribution comes from /etc/os-release (or /usr/lib/os-release),
// /etc/lsb-release, then the distributions' own files (redhat-release,
// centos-release, debian_version, alpine-release, SuSE-release, ...),
// named as libguestfs names them (debian, ubuntu, fedora, centos, rhel,
// rocky, almalinux, opensuse, sles, alpinelinux, archlinux, ...); the
// architecture from the ELF header of /bin/sh or another common binary,
// through the guest's symbolic links; the hostname from /etc/hostname,
// /etc/HOSTNAME or /etc/sysconfig/network; mount points from /etc/fstab,
// with UUID=, LABEL=, PARTUUID=, PARTLABEL=, /dev/disk/by-*, /dev/sdXN,
// /dev/vdXN, /dev/mapper/VG-LV and /dev/VG/LV resolved to the image's
// devices. Where an os-release gives only a major version (Debian,
// CentOS), the minor comes from debian_version or centos-release, but
// the product name stays os-release's PRETTY_NAME.
//
// A Windows root has Windows/System32/config: the SOFTWARE hive gives
// the product name, version, build, edition and installation type
// (Client, Server), the SYSTEM hive's current control set the computer
// name and PROCESSOR_ARCHITECTURE (else the PE header of cmd.exe gives
// the architecture). Drive letters are not mapped.
//
// # Security
//
// Everything read comes from the guest and is untrusted: configuration
// files are read up to 1 MiB, through the guest's own filesystem (its
// symbolic links resolve inside the guest); hives are parsed by
// package guestfs/hive with its bounds. A filesystem that cannot be
// read is skipped, so one corrupt filesystem does not hide the others.
package inspect
