package boot

import "testing"

// QEMU's note about the QMP socket it waits on is no reason it stopped,
// and must not stand where the reason is expected; other lines stay.
func TestTailBufferDropsSocketNotes(t *testing.T) {
	tb := newTailBuffer(1 << 10)
	tb.Write([]byte("qemu-system-x86_64: -qmp unix:/tmp/q/events.sock,server=on,wait=on: info: QEMU waiting for connection on: disconnected:unix:/tmp/q/events.sock,server=on\n"))
	if got := tb.String(); got != "" {
		t.Errorf("only the note: %q", got)
	}
	tb.Write([]byte("qemu-system-x86_64: terminating on signal 15 from pid 1\n"))
	if got := tb.String(); got != "qemu-system-x86_64: terminating on signal 15 from pid 1" {
		t.Errorf("with a message: %q", got)
	}
}
