package openstack

import (
	"strings"
	"testing"
)

// Successive console logs as Nova returns them: growing, then cut at the
// front once long (its libvirt driver sends the last 100 KiB), then
// replaced by something that shares nothing with what came before.
func TestConsoleFollower(t *testing.T) {
	var f consoleFollower
	steps := []struct{ log, want string }{
		{"", ""},
		{"SeaBIOS\r\n", "SeaBIOS\r\n"},
		{"SeaBIOS\r\n", ""},
		{"SeaBIOS\r\nLinux version 6.1\r\nlog", "Linux version 6.1\r\nlog"},
		{"SeaBIOS\r\nLinux version 6.1\r\nlogin: ", "in: "},
	}
	for i, s := range steps {
		if got := f.next(s.log); got != s.want {
			t.Fatalf("step %d: %q, want %q", i, got, s.want)
		}
	}
	// Longer than the anchor, then cut at the front as it grows. The
	// anchor occurs many times in this log: the first place wins, so
	// lines may come twice but never go missing.
	long := strings.Repeat("0123456789abcdef", 200) // 3200 bytes, repeating
	f = consoleFollower{}
	f.next("start\n" + long)
	if got := f.next(long[1000:] + "\nnew line\n"); !strings.HasSuffix(got, "\nnew line\n") || len(got) > len("\nnew line\n")+len(long) {
		t.Errorf("cut log: %d bytes new, ending %q", len(got), got[max(0, len(got)-20):])
	}
	if got := f.next("unrelated text\n"); got != "unrelated text\n" {
		t.Errorf("replaced log: %q", got)
	}
}
