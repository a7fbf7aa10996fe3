package openstack

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/qimg/qimg/internal/devcloudtest"
	"github.com/qimg/qimg/internal/qemutest"
)

// TestImportGlanceDirect stages the data and imports it; Glance's
// hashes of the imported image match the file's.
func TestImportGlanceDirect(t *testing.T) {
	_, qcow := diskImages(t)
	c := connect(t, Config{})
	res, err := c.Upload(context.Background(), qcow, UploadOptions{Name: uniqueName(t), Import: GlanceDirect})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, c, res.Image.ID())
	md5sum, _, _ := fileDigests(t, qcow)
	got := devcloudtest.ShowImage(t, demoEnv, res.Image.ID())
	if got["status"] != "active" || got["checksum"] != md5sum || got["disk_format"] != "qcow2" {
		t.Errorf("image show: status %v checksum %v disk_format %v; want active %s qcow2", got["status"], got["checksum"], got["disk_format"], md5sum)
	}
}

// TestImportWebDownload lets Glance fetch the image from a web server on
// 127.0.0.1.
func TestImportWebDownload(t *testing.T) {
	path := qemutest.RandomFile(t, t.TempDir(), 2<<20)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, path)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	c := connect(t, Config{})
	res, err := c.ImportURL(context.Background(), "http://"+ln.Addr().String()+"/disk.raw",
		UploadOptions{Name: uniqueName(t), DiskFormat: "raw"})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, c, res.Image.ID())
	md5sum, _, size := fileDigests(t, path)
	got := devcloudtest.ShowImage(t, demoEnv, res.Image.ID())
	if got["status"] != "active" || got["checksum"] != md5sum || got["size"] != float64(size) {
		t.Errorf("image show: status %v checksum %v size %v; want active %s %d", got["status"], got["checksum"], got["size"], md5sum, size)
	}
}
