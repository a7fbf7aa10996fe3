// Package layering holds the test that keeps qimg's packages in layers:
// each package may import only packages of its own layer or below, so the
// tree stays a map of the architecture as it grows.
//
//	image  <-  format/<name>  <-  format  <-  convert, guestfs
//	       <-  customize (cloud-ready), boot (boot tests)  <-  openstack, build  <-  cmd
//
// internal/ packages are helpers (compression, atomic files, test oracles):
// they sit at the bottom and may import only image and each other.
package layering
