package openstack_test

import (
	"context"
	"fmt"
	"log"

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
