package build

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/qimg/qimg/boot"
	"github.com/qimg/qimg/internal/libvirttest"
	"github.com/qimg/qimg/internal/qemutest"
)

// The libvirt backend against a private libvirtd (internal/libvirttest),
// on the test installer with its kernel-argument hooks, so that each run
// is a short boot: the guest powering off under UEFI (OVMF) succeeds; a
// reboot and Ctrl-C fail, leave no domain and no temporary file. The full
// install through libvirt is cmd/qimg's TestBuildLibvirtBoots.
func TestLibvirtBackend(t *testing.T) {
	t.Parallel()
	iso := installerISO(t)
	d := libvirttest.Start(t)
	backend := LibvirtBackend{Socket: d.Socket}
	if err := backend.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b := AutoBackend(context.Background(), d.Socket); b.String() != "libvirt" {
		t.Errorf("AutoBackend with a libvirtd took %s", b)
	}
	noDomains := func(t *testing.T) {
		t.Helper()
		if names, err := d.Domains(); err != nil || len(names) != 0 {
			t.Errorf("domains left: %v %v", names, err)
		}
	}
	run := func(t *testing.T, o Options) (*Result, error, string) {
		work, tmp := t.TempDir(), t.TempDir()
		o.ISO, o.Answers, o.Output = iso, answers(t, work, "d-i qimg/marker string M\n"), filepath.Join(work, "out.qcow2")
		o.Size, o.Memory, o.TempDir, o.Backend, o.Timeout = 64<<20, 256, tmp, backend, 5*time.Minute
		o.Log = filepath.Join(work, "console.log")
		res, err := Build(context.Background(), o)
		noDomains(t)
		leftovers(t, tmp)
		log, _ := os.ReadFile(o.Log)
		return res, err, string(log)
	}

	// libvirtd accepts the Windows domains of TestWindowsDomainXML
	// (validated against its schema), and keeps what matters.
	t.Run("WindowsDomainDefines", func(t *testing.T) {
		dir := t.TempDir()
		drivers := filepath.Join(dir, "virtio-win.iso")
		if err := os.WriteFile(drivers, []byte("drivers"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, o := range []Options{{}, {Drivers: drivers, Firmware: UEFI}} {
			_, _, m := windowsMedia(t, t.TempDir(), o)
			x, err := domain{name: "qimg-build-windows-test", console: filepath.Join(dir, "console.log"), m: m}.xml()
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, "domain.xml")
			if err := os.WriteFile(file, []byte(x), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Virsh("define", "--validate", file); err != nil {
				t.Fatalf("%v\n%s", err, x)
			}
			live, err := d.Virsh("dumpxml", "qimg-build-windows-test")
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"<on_reboot>restart</on_reboot>", "<boot order='2'/>", "autounattend.iso", "<label>+"} {
				if !strings.Contains(live, want) {
					t.Errorf("libvirt's XML lacks %q:\n%s", want, live)
				}
			}
			if _, err := d.Virsh("undefine", "--nvram", "qimg-build-windows-test"); err != nil {
				t.Fatal(err)
			}
		}
		noDomains(t)
	})
	t.Run("UEFIPowerOff", func(t *testing.T) {
		var progress bytes.Buffer
		res, err, log := run(t, Options{Firmware: UEFI, Append: "qimg.end=poweroff", Progress: &progress})
		if err != nil {
			t.Fatalf("%v\n%s", err, log)
		}
		t.Logf("%s", progress.String())
		// OVMF's Linux loader: the kernel's EFI stub says it ran.
		if !strings.Contains(log, "EFI stub: ") || !strings.Contains(log, "qimg-installer: powering off as asked") {
			t.Errorf("no UEFI boot seen:\n%s", log)
		}
		if res.Install.Accel != boot.TCG && res.Install.Accel != boot.KVM || res.Install.MAC == "" {
			t.Errorf("result %+v", res.Install)
		}
		if res.Properties["hw_firmware_type"] != "uefi" || !strings.Contains(progress.String(), "through libvirt") {
			t.Errorf("properties %v, progress %s", res.Properties, progress.String())
		}
	})
	t.Run("Reboot", func(t *testing.T) {
		_, err, log := run(t, Options{Append: "qimg.end=reboot"})
		if !errors.Is(err, boot.ErrNotPoweredOff) || !strings.Contains(err.Error(), "rebooted") {
			t.Fatalf("error %v, want a reboot that is not a power-off\n%s", err, log)
		}
	})
	t.Run("FailureMarker", func(t *testing.T) {
		res, err, _ := run(t, Options{Append: "qimg.end=hang", Fail: []*regexp.Regexp{regexp.MustCompile(`^qimg-installer: hanging as asked`)}})
		if !errors.Is(err, boot.ErrFailed) || res.Install == nil || res.Install.Failure == nil {
			t.Fatalf("error %v; want the failure marker", err)
		}
	})
	t.Run("Cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		work, tmp := t.TempDir(), t.TempDir()
		_, err := Build(ctx, Options{
			ISO: iso, Answers: answers(t, work, "d-i qimg/marker string M\n"), Output: filepath.Join(work, "out.qcow2"),
			Size: 64 << 20, Memory: 256, TempDir: tmp, Backend: backend, Console: qemutest.CancelOn("Linux version", cancel),
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		noDomains(t)
		leftovers(t, tmp)
		leftovers(t, work, "preseed.cfg")
	})
}

// Without a libvirtd (no socket, or one whose server says nothing),
// AutoBackend takes QEMU, in bounded time.
func TestAutoBackendWithoutLibvirtd(t *testing.T) {
	dir := t.TempDir()
	silent := filepath.Join(dir, "silent.sock")
	ln, err := net.Listen("unix", silent)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	for _, socket := range []string{filepath.Join(dir, "missing.sock"), silent} {
		start := time.Now()
		if b := AutoBackend(context.Background(), socket); b.String() != "qemu" {
			t.Errorf("AutoBackend(%s) took %s", socket, b)
		}
		if el := time.Since(start); el > 2*autoProbe {
			t.Errorf("AutoBackend(%s) took %v", socket, el)
		}
	}
}
