package qemutest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// BitmapState is a persistent dirty bitmap as QEMU loads it: what
// query-named-block-nodes says of it, and the SHA-256 of its bits from
// x-debug-block-dirty-bitmap-sha256.
type BitmapState struct {
	Name         string `json:"name"`
	Granularity  int64  `json:"granularity"`
	Count        int64  `json:"count"`
	Recording    bool   `json:"recording"`
	Inconsistent bool   `json:"inconsistent"`
	SHA256       string `json:"-"`
}

// Bitmaps loads each qcow2 image read-only into one QEMU process
// (qemu-system-x86_64 with no machine, driven over QMP) and returns the
// bitmaps QEMU finds in each, in its order, with their contents' hashes:
// the judge of what qemu-img bitmap and qimg bitmap leave.
func Bitmaps(t testing.TB, paths ...string) [][]BitmapState {
	t.Helper()
	Need(t, "qemu-system-x86_64")
	cmd := exec.Command("qemu-system-x86_64", "-machine", "none", "-nodefaults", "-display", "none", "-qmp", "stdio")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	defer cmd.Wait()
	defer in.Close()
	q := &qmpConn{t: t, in: in, out: bufio.NewScanner(outPipe), stderr: &stderr}
	q.out.Buffer(nil, 16<<20)
	q.read() // greeting
	q.call("qmp_capabilities", nil, nil)
	all := make([][]BitmapState, len(paths))
	for i, p := range paths {
		node := fmt.Sprintf("n%d", i)
		q.call("blockdev-add", map[string]any{"driver": "qcow2", "node-name": node, "read-only": true,
			"file": map[string]any{"driver": "file", "filename": p}}, nil)
		var nodes []struct {
			NodeName     string        `json:"node-name"`
			DirtyBitmaps []BitmapState `json:"dirty-bitmaps"`
		}
		q.call("query-named-block-nodes", map[string]any{"flat": true}, &nodes)
		for _, n := range nodes {
			if n.NodeName != node {
				continue
			}
			for _, b := range n.DirtyBitmaps {
				var h struct{ SHA256 string }
				q.call("x-debug-block-dirty-bitmap-sha256", map[string]any{"node": node, "name": b.Name}, &h)
				b.SHA256 = h.SHA256
				all[i] = append(all[i], b)
			}
		}
	}
	q.call("quit", nil, nil)
	return all
}

// qmpConn is one QMP session over a QEMU process's standard streams.
type qmpConn struct {
	t      testing.TB
	in     interface{ Write([]byte) (int, error) }
	out    *bufio.Scanner
	stderr *strings.Builder
}

// read returns the next message that is not an event.
func (q *qmpConn) read() map[string]json.RawMessage {
	q.t.Helper()
	for q.out.Scan() {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(q.out.Bytes(), &m); err != nil {
			q.t.Fatalf("QMP: %v: %s", err, q.out.Text())
		}
		if _, ev := m["event"]; !ev {
			return m
		}
	}
	q.t.Fatalf("QMP: QEMU ended: %v\n%s", q.out.Err(), q.stderr.String())
	return nil
}

// call runs a command and decodes its return value into ret (if not nil).
func (q *qmpConn) call(command string, args any, ret any) {
	q.t.Helper()
	msg := map[string]any{"execute": command}
	if args != nil {
		msg["arguments"] = args
	}
	b, _ := json.Marshal(msg)
	if _, err := q.in.Write(append(b, '\n')); err != nil {
		q.t.Fatalf("QMP %s: %v", command, err)
	}
	m := q.read()
	if e, ok := m["error"]; ok {
		q.t.Fatalf("QMP %s: %s", command, e)
	}
	if ret != nil {
		if err := json.Unmarshal(m["return"], ret); err != nil {
			q.t.Fatalf("QMP %s: %v", command, err)
		}
	}
}
