package build

import (
	"context"
	"time"

	"github.com/qimg/qimg/boot"
)

// A Backend runs the installer's machine until its guest powers off, and
// says how it went as package boot does: the console judged by the same
// markers, the same errors (boot.ErrFailed, boot.ErrNotPoweredOff,
// boot.ErrTimeout, ctx's). Build does not care which one runs.
type Backend interface {
	Run(ctx context.Context, m boot.Machine) (*boot.Result, error)
	// String names the backend for progress lines: "qemu", "libvirt".
	String() string
}

// QEMUBackend starts qemu-system-x86_64 itself (boot.Run): QMP for the
// power-off, the console on a pipe.
type QEMUBackend struct{}

func (QEMUBackend) Run(ctx context.Context, m boot.Machine) (*boot.Result, error) {
	return boot.Run(ctx, m)
}

func (QEMUBackend) String() string { return "qemu" }

// autoProbe bounds the look for a libvirtd in AutoBackend.
const autoProbe = 3 * time.Second

// AutoBackend is the libvirt backend on socket ("" is
// DefaultLibvirtSocket) when a libvirtd answers there, else the QEMU
// backend.
func AutoBackend(ctx context.Context, socket string) Backend {
	b := LibvirtBackend{Socket: socket}
	ctx, cancel := context.WithTimeout(ctx, autoProbe)
	defer cancel()
	if b.Ping(ctx) == nil {
		return b
	}
	return QEMUBackend{}
}
