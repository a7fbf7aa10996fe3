package inspect

import (
	"testing"
	"testing/fstest"
)

// TestReleaseFiles: the distribution from the release files alone, and
// an unknown one stays unknown (a missing arch-release is not Arch's
// empty one).
func TestReleaseFiles(t *testing.T) {
	for _, c := range []struct {
		files  fstest.MapFS
		distro string
	}{
		{fstest.MapFS{"etc/os-release": {Data: []byte("ID=qimgtest\nNAME=Test\n")}}, "unknown"},
		{fstest.MapFS{"etc/arch-release": {Data: nil}}, "archlinux"},
		{fstest.MapFS{"etc/debian_version": {Data: []byte("12.5\n")}}, "debian"},
		{fstest.MapFS{}, "unknown"},
	} {
		os := &OS{Distro: "unknown"}
		release(c.files, os)
		if os.Distro != c.distro {
			t.Errorf("%v: distro %q, want %q", c.files, os.Distro, c.distro)
		}
	}
}
