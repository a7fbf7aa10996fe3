package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qimg/qimg/internal/devcloudtest"
	"github.com/qimg/qimg/internal/qemutest"
)

// The cloud commands run against the real Keystone and Glance of
// scripts/devcloud.sh, started on first use, and the openstack CLI judges
// what they did.
var (
	cloudOnce sync.Once
	cloudEnv  map[string]string
	cloudErr  error
	binOnce   sync.Once
	binPath   string
	binErr    error
)

// devcloud starts the cloud (once per test binary) and returns the demo
// identity's environment.
func devcloud(t *testing.T) map[string]string {
	t.Helper()
	cloudOnce.Do(func() {
		if cloudErr = devcloudtest.Start(); cloudErr == nil {
			cloudEnv, cloudErr = devcloudtest.Env("demo")
		}
	})
	if cloudErr != nil {
		t.Fatal(cloudErr)
	}
	return cloudEnv
}

// qimgBinary builds qimg once for the tests that measure the process.
func qimgBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "qimg-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "qimg")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// cloudRun runs the built qimg with the cloud's environment, under GNU
// time; it returns the result and the peak RSS in bytes.
func cloudRun(t *testing.T, env map[string]string, args ...string) (result, int64) {
	t.Helper()
	rss := filepath.Join(t.TempDir(), "rss")
	cmd := exec.Command("/usr/bin/time", append([]string{"-o", rss, "-f", "%M", qimgBinary(t)}, args...)...)
	cmd.Env = devcloudtest.Environ(env)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	kb, _ := os.ReadFile(rss)
	lines := strings.Fields(string(kb))
	var peak int64
	if len(lines) > 0 {
		peak, _ = strconv.ParseInt(lines[len(lines)-1], 10, 64)
	}
	return result{out.String(), errb.String(), code}, peak << 10
}

func uniqueImageName(t *testing.T) string {
	return fmt.Sprintf("qimg-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
}

// TestCloudCommands: upload, then list/show/set/unset/save/delete, each
// judged by the openstack CLI: qimg's output equals the CLI's for the
// same request, and the CLI sees each change.
func TestCloudCommands(t *testing.T) {
	env := devcloud(t)
	dir := t.TempDir()
	raw := qemutest.RandomFile(t, dir, 3<<20)
	name := uniqueImageName(t)
	r, _ := cloudRun(t, env, "upload", raw, "--name", name, "--private", "--tag", "t1",
		"--property", "qimg_test=yes", "-f", "json")
	if r.code != 0 {
		t.Fatalf("upload: %+v", r)
	}
	var up map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &up); err != nil {
		t.Fatalf("upload -f json: %v\n%s", err, r.stdout)
	}
	id, _ := up["id"].(string)
	t.Cleanup(func() { devcloudtest.CLIErr(env, "image", "delete", id) })

	// The same requests, the same answers.
	same := func(args ...string) {
		t.Helper()
		mine, _ := cloudRun(t, env, args...)
		theirs := devcloudtest.CLI(t, env, args...)
		if mine.code != 0 || mine.stdout != theirs {
			t.Errorf("qimg %s:\n%s%s\nopenstack:\n%s", strings.Join(args, " "), mine.stdout, mine.stderr, theirs)
		}
	}
	same("image", "list", "--name", name, "--long")
	same("image", "list", "--name", name, "-f", "value", "-c", "ID", "-c", "Status")
	same("image", "show", name, "-c", "name", "-c", "size", "-c", "status", "-c", "tags", "-c", "visibility")
	var theirs map[string]any
	json.Unmarshal([]byte(devcloudtest.CLI(t, env, "image", "show", "-f", "json", id)), &theirs)
	if !reflect.DeepEqual(up, theirs) {
		t.Errorf("upload -f json:\n%v\nopenstack image show -f json:\n%v", up, theirs)
	}

	if r, _ := cloudRun(t, env, "image", "set", "--property", "a=b", "--tag", "t2", "--min-ram", "64", name); r.code != 0 {
		t.Fatalf("set: %+v", r)
	}
	if r, _ := cloudRun(t, env, "image", "unset", "--property", "qimg_test", "--tag", "t1", id); r.code != 0 {
		t.Fatalf("unset: %+v", r)
	}
	got := devcloudtest.ShowImage(t, env, id)
	props, _ := got["properties"].(map[string]any)
	if props["a"] != "b" || props["qimg_test"] != nil || got["min_ram"] != float64(64) || fmt.Sprint(got["tags"]) != "[t2]" {
		t.Errorf("after set and unset, openstack image show: %v", got)
	}

	back := filepath.Join(dir, "back.raw")
	if r, _ := cloudRun(t, env, "image", "save", "--file", back, name); r.code != 0 {
		t.Fatalf("save: %+v", r)
	}
	qemutest.Run(t, "cmp", raw, back)

	if r, _ := cloudRun(t, env, "image", "delete", name); r.code != 0 {
		t.Fatalf("delete: %+v", r)
	}
	if ids := devcloudtest.ImagesNamed(t, env, name); len(ids) != 0 {
		t.Errorf("deleted image still listed: %v", ids)
	}
}

// TestCloudSaveDetectsDamage: bytes changed in Glance's store make image
// save fail and leave no file.
func TestCloudSaveDetectsDamage(t *testing.T) {
	env := devcloud(t)
	dir := t.TempDir()
	raw := qemutest.RandomFile(t, dir, 1<<20)
	name := uniqueImageName(t)
	r, _ := cloudRun(t, env, "upload", raw, "--name", name, "-f", "value", "-c", "id")
	if r.code != 0 {
		t.Fatalf("upload: %+v", r)
	}
	id := strings.TrimSpace(r.stdout)
	t.Cleanup(func() { devcloudtest.CLIErr(env, "image", "delete", id) })
	state := os.Getenv("QIMG_DEVCLOUD")
	if state == "" {
		state = "/var/lib/qimg-devcloud"
	}
	stored := filepath.Join(state, "glance", "images", id)
	qemutest.Run(t, "sh", "-c", "printf X | dd of="+stored+" bs=1 seek=4096 conv=notrunc status=none")
	back := filepath.Join(dir, "back.raw")
	r, _ = cloudRun(t, env, "image", "save", "--file", back, id)
	if r.code != 1 || !strings.Contains(r.stderr, "differ") {
		t.Errorf("save of a damaged image: %+v", r)
	}
	if _, err := os.Stat(back); !os.IsNotExist(err) {
		t.Errorf("save left %s: %v", back, err)
	}
}

// TestCloudRefusal: a qcow2 with a backing file is refused with exit code
// 1, and no image is created.
func TestCloudRefusal(t *testing.T) {
	env := devcloud(t)
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", base, "1M")
	overlay := filepath.Join(dir, "overlay.qcow2")
	qemutest.Img(t, "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", overlay)
	name := uniqueImageName(t)
	r, _ := cloudRun(t, env, "upload", overlay, "--name", name)
	if r.code != 1 || !strings.Contains(r.stderr, "backing file") || !strings.Contains(r.stderr, "nothing was uploaded") {
		t.Errorf("upload of an overlay: %+v", r)
	}
	if ids := devcloudtest.ImagesNamed(t, env, name); len(ids) != 0 {
		t.Errorf("refused image created: %v", ids)
	}
}

// TestCloudUploadMemory: uploading and saving a 3 GiB sparse raw image
// keep the process's peak RSS (GNU time's %M) under 64 MiB, and the
// image is judged whole by the CLI.
func TestCloudUploadMemory(t *testing.T) {
	env := devcloud(t)
	dir := t.TempDir()
	const size = 3 << 30
	path := filepath.Join(dir, "big.raw")
	qemutest.Run(t, "truncate", "-s", strconv.Itoa(size), path)
	qemutest.Run(t, "sh", "-c", "head -c 1048576 /dev/urandom | dd of="+path+" bs=1M seek=1000 conv=notrunc status=none")
	name := uniqueImageName(t)
	start := time.Now()
	r, rss := cloudRun(t, env, "upload", "-q", path, "--name", name, "-f", "value", "-c", "id")
	elapsed := time.Since(start)
	if r.code != 0 {
		t.Fatalf("upload: %+v", r)
	}
	id := strings.TrimSpace(r.stdout)
	t.Cleanup(func() { devcloudtest.CLIErr(env, "image", "delete", id) })
	t.Logf("upload of %d MiB: %.1f s (%.0f MiB/s), peak RSS %.1f MiB", size>>20, elapsed.Seconds(),
		float64(size>>20)/elapsed.Seconds(), float64(rss)/(1<<20))
	if rss <= 0 || rss > 64<<20 {
		t.Errorf("upload peak RSS %d bytes, want at most 64 MiB", rss)
	}
	if got := devcloudtest.ShowImage(t, env, id); got["status"] != "active" || got["size"] != float64(size) {
		t.Errorf("openstack image show: status %v size %v", got["status"], got["size"])
	}
	back := filepath.Join(dir, "back.raw")
	start = time.Now()
	r, rss = cloudRun(t, env, "image", "save", "-q", "--file", back, id)
	elapsed = time.Since(start)
	if r.code != 0 {
		t.Fatalf("save: %+v", r)
	}
	t.Logf("save of %d MiB: %.1f s (%.0f MiB/s), peak RSS %.1f MiB", size>>20, elapsed.Seconds(),
		float64(size>>20)/elapsed.Seconds(), float64(rss)/(1<<20))
	if rss <= 0 || rss > 64<<20 {
		t.Errorf("save peak RSS %d bytes, want at most 64 MiB", rss)
	}
}
