package qemutest

import (
	"bufio"
	"strings"
	"testing"
)

// Blkid is what `blkid -p -o export` says of a file (a low-level probe of
// its content, no cache): the fields by name (TYPE, LABEL, UUID, ...),
// none when blkid recognises nothing (its exit 2).
func Blkid(t testing.TB, path string) map[string]string {
	t.Helper()
	out, code, stderr := RunCode(t, "blkid", "-p", "-o", "export", path)
	fields := map[string]string{}
	switch code {
	case 0:
	case 2:
		return fields
	default:
		t.Fatalf("blkid %s: exit %d\n%s", path, code, stderr)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			fields[k] = v
		}
	}
	return fields
}
