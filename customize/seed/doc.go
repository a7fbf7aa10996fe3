// Package seed builds the media cloud-init and cloudbase-init read their
// instance configuration from, without a metadata service: a NoCloud
// seed and an OpenStack config drive, each as ISO 9660 (with Rock Ridge
// and Joliet, as genisoimage -J -r makes them) or as FAT.
//
// A NoCloud seed is labelled "cidata" ("CIDATA" on FAT) and holds
// user-data and meta-data, which cloud-init requires, and network-config
// and vendor-data when given. Generated meta-data has an instance-id
// ("iid-" and 16 hex digits derived from the rest of the seed, so the
// same seed names the same instance), local-hostname and public-keys.
//
// A config drive is labelled "config-2" and laid out as Nova's
// configdrive writes it: openstack/VERSION/meta_data.json (uuid,
// hostname, name, public_keys, keys, availability_zone, launch_index,
// files, meta; devices from 2016-06-30, dedicated_cpus from 2020-10-14),
// user_data, vendor_data.json (from 2013-10-17), network_data.json (from
// 2015-10-15) and vendor_data2.json (from 2016-10-06), for every
// metadata version from 2012-08-10 to 2025-04-04 and "latest"; and
// ec2/2009-04-04 and ec2/latest with meta-data.json and user-data.
// cloud-init requires meta_data.json with a uuid; cloudbase-init reads
// openstack/latest/meta_data.json (uuid, hostname, public_keys) and
// user_data. network_data.json is the one given, or DHCP on the NIC with
// Config.MAC; with neither it is left out, and cloud-init falls back to
// DHCP on the first NIC (Nova's empty {} would mean no network at all).
// A FAT config drive is 64 MiB, as Nova makes it.
//
// User-data and vendor-data are checked with package cloudinit before
// anything is written; given meta-data, network-config and
// network_data.json are checked for their basic shape. The tests attach
// each kind of seed to a loop device and run cloud-init's own NoCloud
// and ConfigDrive datasources on it (found by blkid label, as at boot).
package seed
