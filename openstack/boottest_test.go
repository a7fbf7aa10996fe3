package openstack

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qimg/qimg/boot"
	"github.com/qimg/qimg/internal/devcloudtest"
	"github.com/qimg/qimg/internal/qemutest"
)

// The boot tests run on the devcloud's second stage (Placement, Nova with
// libvirt and QEMU TCG, Neutron), started on first use. The boot of a
// real Debian guest is in cmd/qimg's tests (qimg inject, upload and
// boot-test --cloud together); these boot disks whose boot sector prints
// what a test needs and halts, which takes seconds.

var nova struct {
	once sync.Once
	err  error
}

func startNova(t *testing.T) {
	t.Helper()
	nova.once.Do(func() { nova.err = devcloudtest.StartNova() })
	if nova.err != nil {
		t.Fatal(nova.err)
	}
}

// panicText is a console that a kernel panic ends, with the line that
// explains it after the marker.
const panicText = "Linux version 6.1.0-qimg (qimg test)\r\n" +
	"[    1.5] VFS: Cannot open root device \"vda1\" or unknown-block(0,0): error -6\r\n" +
	"[    1.5] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\r\n" +
	"[    1.5] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0) ]---\r\n"

// uploadSerialDisk uploads with qimg's Upload a disk that prints text and
// halts, and deletes it at the end of the test.
func uploadSerialDisk(t *testing.T, c *Client, text string) string {
	t.Helper()
	path := qemutest.SerialBootDisk(t, t.TempDir(), text)
	res, err := c.Upload(context.Background(), path, UploadOptions{Name: uniqueName(t)})
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, c, res.Image.ID())
	return res.Image.ID()
}

// statusLog records the statuses BootTest reports.
type statusLog struct {
	mu   sync.Mutex
	seen []string
}

func (s *statusLog) add(status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, status)
}

func (s *statusLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.seen, " ")
}

// checkGone fails if the server or the keypair of a boot test is left.
func checkGone(t *testing.T, res *BootResult) {
	t.Helper()
	if ids := devcloudtest.ServersNamed(t, demoEnv, res.ServerName); len(ids) != 0 {
		t.Errorf("servers %v are left", ids)
	}
	if res.CreatedKey && devcloudtest.KeyPairExists(t, demoEnv, res.KeyName) {
		t.Errorf("keypair %s is left", res.KeyName)
	}
	if !res.Deleted {
		t.Errorf("the result does not say the server was deleted: %+v", res)
	}
}

// A guest whose console ends in a kernel panic: the test fails on that
// marker as soon as the console log shows it, with the lines after it in
// the tail, and deletes the server and keypair it made.
func TestBootTestConsoleFailure(t *testing.T) {
	t.Parallel()
	startNova(t)
	c := connect(t, Config{})
	img := uploadSerialDisk(t, c, panicText)
	var console bytes.Buffer
	var statuses statusLog
	start := time.Now()
	res, err := c.BootTest(context.Background(), BootOptions{
		Image: img, Flavor: devcloudtest.Flavor, Network: "none", Console: &console,
		Status: statuses.add, Timeout: 10 * time.Minute,
	})
	t.Logf("%v after %.1fs; statuses %s", err, time.Since(start).Seconds(), &statuses)
	if !errors.Is(err, boot.ErrFailed) {
		t.Fatalf("error %v, want boot.ErrFailed", err)
	}
	if res == nil || res.Console == nil || res.Console.Failure == nil || res.Console.Failure.Name != "kernel panic" {
		t.Fatalf("result %+v, want a kernel panic", res)
	}
	tail := strings.Join(res.Console.Tail, "\n")
	for _, want := range []string{"Linux version 6.1.0-qimg", "---[ end Kernel panic"} {
		if !strings.Contains(tail, want) {
			t.Errorf("tail lacks %q:\n%s", want, tail)
		}
	}
	if !strings.Contains(console.String(), "Cannot open root device") || strings.Contains(console.String(), "\r") {
		t.Errorf("console stream:\n%q", console.String())
	}
	if got := statuses.String(); got != "BUILD ACTIVE deleted" {
		t.Errorf("statuses %q, want BUILD ACTIVE deleted", got)
	}
	if res.Active <= 0 || res.Active > res.Console.Elapsed {
		t.Errorf("ACTIVE after %v, console decided after %v", res.Active, res.Console.Elapsed)
	}
	checkGone(t, res)
}

// An image Nova refuses to boot (a qcow2 with a backing file; qimg's own
// upload refuses it, so the openstack CLI uploads it): the server goes to
// ERROR, and the test stops there with the server's fault instead of
// waiting for ACTIVE until its time-out.
func TestBootTestServerFault(t *testing.T) {
	t.Parallel()
	startNova(t)
	c := connect(t, Config{})
	dir := t.TempDir()
	qemutest.Img(t, "create", "-q", "-f", "raw", filepath.Join(dir, "base.raw"), "1M")
	top := filepath.Join(dir, "top.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", top)
	name := uniqueName(t)
	id := strings.TrimSpace(devcloudtest.CLI(t, demoEnv, "image", "create", "--disk-format", "qcow2",
		"--container-format", "bare", "--file", top, "-f", "value", "-c", "id", name))
	cleanup(t, c, id)
	start := time.Now()
	res, err := c.BootTest(context.Background(), BootOptions{Image: id, Flavor: devcloudtest.Flavor, Network: "none",
		Timeout: 10 * time.Minute})
	t.Logf("%v after %.1fs", err, time.Since(start).Seconds())
	if !errors.Is(err, ErrServerFault) {
		t.Fatalf("error %v, want ErrServerFault", err)
	}
	if res.Status != "ERROR" || res.Fault == "" || !strings.Contains(err.Error(), res.Fault) {
		t.Errorf("status %s, fault %q", res.Status, res.Fault)
	}
	checkGone(t, res)
}

// Cancelling the context (Ctrl-C in qimg) deletes the server and the
// keypair all the same.
func TestBootTestCancel(t *testing.T) {
	t.Parallel()
	startNova(t)
	c := connect(t, Config{})
	img := uploadSerialDisk(t, c, "qimg: nothing to wait for here\r\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := c.BootTest(ctx, BootOptions{Image: img, Flavor: devcloudtest.Flavor, Network: "none",
		Status: func(status string) {
			if status == "BUILD" {
				cancel()
			}
		}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	checkGone(t, res)
}

// What cannot be found stops the test before anything is made.
func TestBootTestNotFound(t *testing.T) {
	startNova(t)
	c := connect(t, Config{})
	ctx := context.Background()
	for _, o := range []BootOptions{
		{Image: "qimg-no-such-image", Flavor: devcloudtest.Flavor},
		{Image: "qimg-no-such-image", Flavor: "qimg-no-such-flavor"},
	} {
		if res, err := c.BootTest(ctx, o); !errors.Is(err, ErrNotFound) || res != nil {
			t.Errorf("%+v: %v, %+v; want ErrNotFound and no result", o, err, res)
		}
	}
	img := uploadSerialDisk(t, c, "x\r\n")
	for _, o := range []BootOptions{
		{Image: img, Flavor: "qimg-no-such-flavor"},
		{Image: img, Flavor: devcloudtest.Flavor, Network: "qimg-no-such-network"},
		{Image: img, Flavor: devcloudtest.Flavor, Network: "none", KeyName: "qimg-no-such-key"},
	} {
		if _, err := c.BootTest(ctx, o); !errors.Is(err, ErrNotFound) {
			t.Errorf("%+v: %v, want ErrNotFound", o, err)
		}
	}
	if _, err := c.BootTest(ctx, BootOptions{Image: img}); err == nil {
		t.Error("no flavor: no error")
	}
}
