package convert_test

// Crash safety of conversion: a conversion killed at any point leaves the
// destination as it was (absent, or the previous complete image), never a
// partial file under the final name. The test re-executes its own binary
// as the converter (TestConvertCrashChild with QIMG_CONVERT_CHILD set) and
// SIGKILLs it at a random moment.

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/qimg/qimg/convert"
	"github.com/qimg/qimg/format"
	"github.com/qimg/qimg/format/qcow2"
	"github.com/qimg/qimg/internal/qemutest"
)

// TestConvertCrashChild converts $QIMG_CONVERT_SRC to $QIMG_CONVERT_DST
// over and over until it is killed. Run by itself it does nothing.
func TestConvertCrashChild(t *testing.T) {
	src, dst := os.Getenv("QIMG_CONVERT_SRC"), os.Getenv("QIMG_CONVERT_DST")
	if src == "" {
		return
	}
	in, _, err := format.Open(src, format.OpenOptions{})
	if err != nil {
		os.Exit(2)
	}
	for i := 0; ; i++ {
		o := convert.Options{Compress: i%2 == 0, Create: format.CreateOptions{QCOW2: qcow2.CreateOptions{ClusterSize: 4096}}, Workers: 2}
		if err := convert.Convert(context.Background(), in, dst, o); err != nil {
			os.Stdout.WriteString("error " + err.Error() + "\n")
			os.Exit(2)
		}
		os.Stdout.WriteString("done\n")
	}
}

func TestConvertKilled(t *testing.T) {
	dir := t.TempDir()
	src := diskLike(t, dir, 24<<20)
	dst := filepath.Join(dir, "out.qcow2")
	rng := rand.New(rand.NewPCG(11, 12))
	completed := 0
	for kill := range 20 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestConvertCrashChild$")
		cmd.Env = append(os.Environ(), "QIMG_CONVERT_SRC="+src, "QIMG_CONVERT_DST="+dst)
		var out strings.Builder
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(20+rng.IntN(400)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if strings.Contains(out.String(), "error") {
			t.Fatalf("kill %d: child failed: %s", kill, out.String())
		}
		completed += strings.Count(out.String(), "done")
		if _, err := os.Stat(dst); os.IsNotExist(err) {
			if completed > 0 {
				t.Fatalf("kill %d: a completed conversion's output disappeared", kill)
			}
			continue
		}
		// Whatever is under the final name is a whole, correct image.
		qemutest.Check(t, dst)
		qemutest.Img(t, "compare", "-f", "raw", "-F", "qcow2", src, dst)
	}
	if completed == 0 {
		t.Log("no conversion completed before a kill; only absence was checked")
	}
	t.Logf("%d conversions completed across 20 kills", completed)
}
