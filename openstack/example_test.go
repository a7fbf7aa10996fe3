package openstack_test

import (
	"context"
	"fmt"
	"log"
	"regexp"

	"github.com/qimg/qimg/openstack"
)

// Upload an image to the cloud named by OS_CLOUD (or the OS_* variables),
// refused before anything is sent if Nova could not boot it.
func ExampleClient_Upload() {
	ctx := context.Background()
	c, err := openstack.Connect(ctx, openstack.Config{})
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.Upload(ctx, "disk.qcow2", openstack.UploadOptions{
		Name:       "debian-12",
		Visibility: "private",
		Properties: map[string]string{"hw_scsi_model": "virtio-scsi"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Image.ID(), res.Image.Status(), res.Digests.SHA512)
}

// Preflight alone needs no cloud: what would be sent, and why not.
func ExamplePreflight() {
	plan, err := openstack.Preflight(context.Background(), "disk.qcow2", "", "raw")
	if err != nil {
		log.Fatal(err) // wraps openstack.ErrRefused for an unbootable image
	}
	fmt.Println(plan.DiskFormat, plan.Size, plan.MinDisk(), plan.Warnings)
}

// Boot a server from an image without a NIC, with a config drive whose
// user-data prints a marker, and wait for it on the console; the server
// and the keypair made for it are deleted afterwards.
func ExampleClient_BootTest() {
	ctx := context.Background()
	c, err := openstack.Connect(ctx, openstack.Config{})
	if err != nil {
		log.Fatal(err)
	}
	res, err := c.BootTest(ctx, openstack.BootOptions{
		Image: "debian-12", Flavor: "m1.small", Network: "none", ConfigDrive: true,
		UserData: []byte("#!/bin/sh\necho QIMG-MARKER >/dev/ttyS0\n"),
		Expect:   []*regexp.Regexp{regexp.MustCompile(`QIMG-MARKER`)},
	})
	if err != nil {
		if res != nil && res.Console != nil {
			for _, l := range res.Console.Tail {
				fmt.Println("|", l)
			}
		}
		log.Fatal(err) // boot.ErrFailed, boot.ErrTimeout, openstack.ErrServerFault, ...
	}
	for _, p := range res.Console.Phases {
		fmt.Printf("%-20s %.1fs\n", p.Name, p.At.Seconds())
	}
}
