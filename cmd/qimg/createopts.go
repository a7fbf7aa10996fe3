package main

import (
	"fmt"

	"github.com/qimg/qimg/cmd/qimg/internal/qfmt"
	"github.com/qimg/qimg/format/luks"
	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/format/vhd"
	"github.com/qimg/qimg/format/vmdk"
)

// qcow2CreateOpts lists qemu-img's qcow2 creation options in the order
// qemu-img prints them on the "Formatting" line, with their defaults.
var qcow2CreateOpts = []qfmt.OptDesc{
	{Name: "encryption", Type: qfmt.OptBool, Help: "Encrypt the image with format 'aes'. (Deprecated in favor of encrypt.format=aes)"},
	{Name: "encrypt.format", Type: qfmt.OptString, Help: "Encrypt the image, format choices: 'aes', 'luks'"},
	{Name: "encrypt.key-secret", Type: qfmt.OptString, Help: "ID of secret providing qcow AES key or LUKS passphrase"},
	{Name: "encrypt.cipher-alg", Type: qfmt.OptString, Help: "Name of encryption cipher algorithm"},
	{Name: "encrypt.cipher-mode", Type: qfmt.OptString, Help: "Name of encryption cipher mode"},
	{Name: "encrypt.ivgen-alg", Type: qfmt.OptString, Help: "Name of IV generator algorithm"},
	{Name: "encrypt.ivgen-hash-alg", Type: qfmt.OptString, Help: "Name of IV generator hash algorithm"},
	{Name: "encrypt.hash-alg", Type: qfmt.OptString, Help: "Name of encryption hash algorithm"},
	{Name: "encrypt.iter-time", Type: qfmt.OptNumber, Help: "Time to spend in PBKDF in milliseconds"},
	{Name: "cluster_size", Type: qfmt.OptSize, Help: "qcow2 cluster size", Default: "65536"},
	{Name: "extended_l2", Type: qfmt.OptBool, Help: "Extended L2 tables", Default: "off"},
	{Name: "preallocation", Type: qfmt.OptString, Help: "Preallocation mode (allowed values: off, metadata, falloc, full)"},
	{Name: "compression_type", Type: qfmt.OptString, Help: "Compression method used for image cluster compression", Default: "zlib"},
	{Name: "size", Type: qfmt.OptSize, Help: "Virtual disk size"},
	{Name: "compat", Type: qfmt.OptString, Help: "Compatibility level (v2 [0.10] or v3 [1.1])"},
	{Name: "backing_file", Type: qfmt.OptString, Help: "File name of a base image"},
	{Name: "backing_fmt", Type: qfmt.OptString, Help: "Image format of the base image"},
	{Name: "data_file", Type: qfmt.OptString, Help: "File name of an external data file"},
	{Name: "data_file_raw", Type: qfmt.OptBool, Help: "The external data file must stay valid as a raw image"},
	{Name: "lazy_refcounts", Type: qfmt.OptBool, Help: "Postpone refcount updates", Default: "off"},
	{Name: "refcount_bits", Type: qfmt.OptNumber, Help: "Width of a reference count entry in bits", Default: "16"},
}

// rawCreateOpts are the raw creation options.
var rawCreateOpts = []qfmt.OptDesc{
	{Name: "size", Type: qfmt.OptSize, Help: "Virtual disk size"},
	{Name: "preallocation", Type: qfmt.OptString, Help: "Preallocation mode (allowed values: off, falloc, full)"},
}

// vpcCreateOpts are the VHD (vpc) options, as qemu-img lists them.
var vpcCreateOpts = []qfmt.OptDesc{
	{Name: "force_size", Type: qfmt.OptBool, Help: "Force disk size calculation to use the actual size specified, rather than using the nearest CHS-based calculation"},
	{Name: "size", Type: qfmt.OptSize, Help: "Virtual disk size"},
	{Name: "subformat", Type: qfmt.OptString, Help: "Type of virtual hard disk format. Supported formats are {dynamic (default) | fixed} "},
}

// vmdkCreateOpts are the VMDK options, as qemu-img lists them; qimg writes
// only subformat=streamOptimized.
var vmdkCreateOpts = []qfmt.OptDesc{
	{Name: "adapter_type", Type: qfmt.OptString, Help: "Virtual adapter type, can be one of ide (default), lsilogic, buslogic or legacyESX"},
	{Name: "backing_file", Type: qfmt.OptString, Help: "File name of a base image"},
	{Name: "backing_fmt", Type: qfmt.OptString, Help: "Must be 'vmdk' if present"},
	{Name: "compat6", Type: qfmt.OptBool, Help: "VMDK version 6 image"},
	{Name: "hwversion", Type: qfmt.OptString, Help: "VMDK hardware version"},
	{Name: "size", Type: qfmt.OptSize, Help: "Virtual disk size"},
	{Name: "subformat", Type: qfmt.OptString, Help: "VMDK flat extent format, can be one of {monolithicSparse (default) | monolithicFlat | twoGbMaxExtentSparse | twoGbMaxExtentFlat | streamOptimized} "},
	{Name: "toolsversion", Type: qfmt.OptString, Help: "VMware guest tools version"},
	{Name: "zeroed_grain", Type: qfmt.OptBool, Help: "Enable efficient zero writes using the zeroed-grain GTE feature"},
}

func createOptsFor(format string) []qfmt.OptDesc {
	switch format {
	case "raw":
		return rawCreateOpts
	case "vpc":
		return vpcCreateOpts
	case "vmdk":
		return vmdkCreateOpts
	}
	return qcow2CreateOpts
}

// vmdkOptions turns parsed -o options into vmdk.StreamOptions. qimg
// writes streamOptimized VMDKs only (what OVA and ESXi imports take), so
// it must be asked for by name: qemu-img's default is monolithicSparse.
func vmdkOptions(o *qfmt.Opts) (vmdk.StreamOptions, error) {
	c := vmdk.StreamOptions{
		AdapterType:  o.String("adapter_type", "ide"),
		HWVersion:    o.String("hwversion", ""),
		Compat6:      o.Bool("compat6", false),
		ToolsVersion: o.String("toolsversion", ""),
	}
	if sub := o.String("subformat", "monolithicSparse"); sub != "streamOptimized" {
		return c, fail("qimg writes VMDK only as subformat=streamOptimized, not %s", sub)
	}
	switch c.AdapterType {
	case "ide", "lsilogic", "buslogic", "legacyESX":
	default:
		return c, fail("Unknown adapter type: '%s'", c.AdapterType)
	}
	if o.String("backing_file", "") != "" {
		return c, fail("qimg does not write VMDK delta disks (backing_file)")
	}
	return c, nil
}

// vpcOptions turns parsed -o options into vhd.CreateOptions.
func vpcOptions(o *qfmt.Opts) (vhd.CreateOptions, error) {
	c := vhd.CreateOptions{Subformat: o.String("subformat", "dynamic"), ForceSize: o.Bool("force_size", false)}
	if c.Subformat != "dynamic" && c.Subformat != "fixed" {
		return c, fail("Invalid subformat '%s'", c.Subformat)
	}
	return c, nil
}

// encryptOptions turns -o encrypt.* (and the deprecated encryption=on)
// into qcow2.Encryption, taking the key from the --object secrets; nil
// when the image is not to be encrypted.
func encryptOptions(o *qfmt.Opts, secrets map[string][]byte) (*qcow2.Encryption, error) {
	format := o.String("encrypt.format", "")
	if o.Bool("encryption", false) {
		if format != "" && format != qcow2.EncryptAES {
			return nil, fail("Parameter 'encrypt.format' does not accept value '%s' with encryption=on", format)
		}
		format = qcow2.EncryptAES
	}
	if format == "" {
		return nil, nil
	}
	e := &qcow2.Encryption{Format: format, LUKS: luks.Options{
		CipherAlg:    o.String("encrypt.cipher-alg", ""),
		CipherMode:   o.String("encrypt.cipher-mode", ""),
		IVGenAlg:     o.String("encrypt.ivgen-alg", ""),
		IVGenHashAlg: o.String("encrypt.ivgen-hash-alg", ""),
		HashAlg:      o.String("encrypt.hash-alg", ""),
		IterTime:     int64(o.Number("encrypt.iter-time", 0)),
	}}
	if id := o.String("encrypt.key-secret", ""); id != "" {
		key, ok := secrets[id]
		if !ok {
			return nil, fail("No secret with id '%s'", id)
		}
		e.Key = key
	}
	return e, nil
}

// optionsHelp prints the creation options of format when the -o list asks
// for help (-o help, -o ?), and reports whether it did.
func (e *env) optionsHelp(format, optList string) (bool, error) {
	if optList == "" || !qfmt.HasHelp(optList) {
		return false, nil
	}
	if !writableFormat(format) {
		return true, formatError(format)
	}
	_, err := fmt.Fprint(e.stdout, createHelp(format))
	return true, err
}

// createHelp is "qemu-img create -f FMT -o help". qemu-img lists only the
// format's own options for raw (preallocation belongs to its protocol).
func createHelp(format string) string {
	if format == "raw" {
		return qfmt.Help(format, rawCreateOpts[:1])
	}
	return qfmt.Help(format, createOptsFor(format))
}

// qcow2Options turns parsed -o options into qcow2.CreateOptions (Size not
// set), validated by CreateOptions.Validate with qemu-img's messages.
func qcow2Options(o *qfmt.Opts, secrets map[string][]byte) (qcow2.CreateOptions, error) {
	c := qcow2.CreateOptions{
		Compat:          o.String("compat", ""),
		ClusterSize:     int64(o.Number("cluster_size", 65536)),
		RefcountBits:    int(o.Number("refcount_bits", 16)),
		LazyRefcounts:   o.Bool("lazy_refcounts", false),
		CompressionType: o.String("compression_type", "zlib"),
		ExtendedL2:      o.Bool("extended_l2", false),
		Preallocation:   o.String("preallocation", "off"),
		BackingFile:     o.String("backing_file", ""),
		BackingFormat:   o.String("backing_fmt", ""),
		DataFile:        o.String("data_file", ""),
		DataFileRaw:     o.Bool("data_file_raw", false),
	}
	enc, err := encryptOptions(o, secrets)
	if err != nil {
		return c, err
	}
	c.Encrypt = enc
	// An explicit 0 is invalid in qemu-img; in CreateOptions 0 means the
	// default, so make it a value Validate refuses with the same message.
	if c.ClusterSize == 0 {
		c.ClusterSize = -1
	}
	if c.RefcountBits == 0 {
		c.RefcountBits = -1
	}
	if err := c.Validate(); err != nil {
		return c, fail("%s", err)
	}
	if c.Preallocation == "off" {
		c.Preallocation = ""
	}
	return c, nil
}
