package openstack

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/qimg/qimg/internal/devcloudtest"
)

// The tests run against the real Keystone and Glance of
// scripts/devcloud.sh, which TestMain starts if it is not running (the
// first time on a machine it installs the packages: a few minutes).
var demoEnv map[string]string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		if err := devcloudtest.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "starting the devcloud:", err)
			return 1
		}
		env, err := devcloudtest.Env("demo")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		demoEnv = env
		return m.Run()
	}())
}

// getenv reads a map as the environment.
func getenv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// connect logs in as the demo user with OS_* variables.
func connect(t testing.TB, c Config) *Client {
	t.Helper()
	if c.Getenv == nil {
		c.Getenv = getenv(demoEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := Connect(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// uniqueName is an image name no other test (or earlier run) uses.
func uniqueName(t testing.TB) string {
	b := make([]byte, 4)
	rand.Read(b)
	return "qimg-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + hex.EncodeToString(b)
}

// fileDigests hashes a file independently of the package's code.
func fileDigests(t testing.TB, path string) (md5sum, sha512sum string, size int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, s := md5.New(), sha512.New()
	n, err := io.Copy(io.MultiWriter(m, s), f)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(m.Sum(nil)), hex.EncodeToString(s.Sum(nil)), n
}

// cleanup deletes the image at the end of the test.
func cleanup(t testing.TB, c *Client, id string) {
	t.Cleanup(func() {
		if err := c.DeleteImage(context.Background(), id); err != nil {
			t.Errorf("deleting %s: %v", id, err)
		}
	})
}
