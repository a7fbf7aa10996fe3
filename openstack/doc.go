// Package openstack uploads disk images to an OpenStack cloud's image
// service (Glance v2), manages them, and boots them on its compute service
// (Nova) to prove they work, on gophercloud v2.
//
// # Authentication
//
// Connect authenticates as the openstack CLI does: a cloud of clouds.yaml
// named by Config.Cloud or OS_CLOUD (searched in ., ~/.config/openstack
// and /etc/openstack, or OS_CLIENT_CONFIG_FILE; secure.yaml beside it is
// merged), with OS_* variables overriding its values; or the OS_*
// variables of an openrc file alone, including the user and project
// domains (OS_USER_DOMAIN_NAME/ID, OS_PROJECT_DOMAIN_NAME/ID), region,
// interface, OS_CACERT, OS_CERT/OS_KEY and OS_INSECURE; passwords,
// application credentials (OS_APPLICATION_CREDENTIAL_*) and tokens
// (OS_TOKEN). Tokens are renewed when Keystone rejects them and shortly
// before they expire, except a given OS_TOKEN, which cannot be.
//
// # Upload
//
// Upload first runs Preflight, which looks at the file as Glance's format
// inspector and Nova (CVE-2024-32498) do and refuses (ErrRefused) what
// Glance would store but Nova would not boot: a --disk-format other than
// the real format (format.Probe), a qcow2 with a backing file, an
// external data file, unknown incompatible features or the corrupt bit,
// an image whose data lives in other files (VMDK extents), and anything
// the format's own check finds corrupt. zstd compression and encryption
// give warnings. Nothing is created on the cloud before this passes.
//
// The data is then sent with a Content-Length (gophercloud alone sends
// chunked) from an io.ReaderAt, in constant memory, and hashed on the way
// (sha512: one digest proves the bytes, and a second would take CPU from
// Glance, which hashes them too); when the image is active its size and
// os_hash_value must equal what was sent (ErrHashMismatch otherwise). A
// cloud that keeps only an md5 checksum gets it from a second pass.
// --convert raw streams the guest disk through the format layer;
// --convert qcow2 writes a temporary file. Every failure after the
// record exists deletes it, also when the context is cancelled (Ctrl-C):
// the delete runs on a context of its own. A transfer cut by the network
// or a server error is retried on the same record when Glance has put it
// back to queued, else on a new one after deleting the old.
//
// Guest inspection (guestfs/inspect) suggests properties: os_type,
// os_distro, os_version, architecture, hw_disk_bus, hw_vif_model,
// hw_qemu_guest_agent when the agent is installed, hw_firmware_type=uefi
// for a GPT disk with an EFI system partition and no BIOS boot
// partition, and min_disk from the virtual size. Given properties win.
//
// # Boot test
//
// BootTest creates a keypair (or uses a given one) and a server from an
// image, with a flavor, a network or none at all ("networks": "none",
// compute API microversion 2.37), a config drive and user-data. Its wait
// for ACTIVE stops on ERROR with the server's fault (gophercloud's
// WaitForStatus would wait on). Then it polls the console log
// (os-getConsoleOutput), which Nova returns whole (its last 100 KiB): the
// text new in each answer goes to package boot's Console and Watcher,
// the same that judge a local boot, so success (the login prompt,
// cloud-init's final message, the caller's markers such as a line the
// user-data prints) and failure (a kernel panic, an emergency shell,
// Windows' INACCESSIBLE_BOOT_DEVICE, ...) mean the same everywhere. The
// server's status is read every 15 s besides: one that leaves ACTIVE ends
// the test. The server and the keypair it made are deleted on every way
// out, Ctrl-C included, unless Keep; a server whose create request failed
// is looked for by its name, which is the test's own.
//
// # Security
//
// The image file is untrusted: it is opened with image.RefuseBacking, so
// names inside it never make qimg read another host file, and everything
// the guest says (inspection) only becomes property values. Credentials
// are only sent to the identity endpoint and, as tokens, to the catalog's
// endpoints; gophercloud strips the token on cross-origin redirects.
//
// The console log is the guest's text: package boot cleans it of
// terminal control sequences before a line is matched, kept or shown, and
// bounds what is kept.
//
// Tests run against a real Keystone and Glance (scripts/devcloud.sh), and
// a real Nova and Neutron for boot tests (devcloud.sh start --nova), with
// the openstack CLI as the judge.
package openstack
