package boot

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"
)

// maxQMPLine bounds one message read from QEMU's monitor socket.
const maxQMPLine = 64 << 10

// qmpQuit asks the QEMU whose QMP socket is at path to quit, the clean
// way to stop a machine that is to be thrown away: QEMU closes its files
// and exits at once, without the guest shutting down. It gives up after
// timeout.
func qmpQuit(ctx context.Context, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return fmt.Errorf("QMP: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return fmt.Errorf("QMP: %w", err)
		}
	}
	q, err := newQMPConn(conn)
	if err != nil {
		return err
	}
	return q.execute("quit")
}

// newQMPConn reads QEMU's greeting on conn and leaves the capabilities
// negotiation mode, so that commands can be run and events arrive.
func newQMPConn(conn net.Conn) (*qmpConn, error) {
	q := &qmpConn{conn: conn, r: bufio.NewReaderSize(conn, maxQMPLine)}
	if err := q.greeting(); err != nil {
		return nil, err
	}
	if err := q.execute("qmp_capabilities"); err != nil {
		return nil, err
	}
	return q, nil
}

// qmpConn is one QMP session: JSON messages, one per line.
type qmpConn struct {
	conn net.Conn
	r    *bufio.Reader
}

// qmpMessage holds the fields of a QMP message that tell its kind.
type qmpMessage struct {
	QMP    json.RawMessage `json:"QMP"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

func (q *qmpConn) read() (qmpMessage, error) {
	var m qmpMessage
	line, err := q.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return m, fmt.Errorf("QMP: message longer than %d bytes", maxQMPLine)
	}
	if err != nil {
		return m, fmt.Errorf("QMP: %w", err)
	}
	if err := json.Unmarshal(line, &m); err != nil {
		return m, fmt.Errorf("QMP: %w", err)
	}
	return m, nil
}

// greeting reads the banner QEMU sends first.
func (q *qmpConn) greeting() error {
	m, err := q.read()
	if err != nil {
		return err
	}
	if m.QMP == nil {
		return errors.New("QMP: no greeting")
	}
	return nil
}

// execute runs a command without arguments and waits for its answer,
// skipping events. After "quit" QEMU may close the socket before it
// answers; that counts as done.
func (q *qmpConn) execute(command string) error {
	msg, err := json.Marshal(map[string]string{"execute": command})
	if err != nil {
		return err
	}
	if _, err := q.conn.Write(append(msg, '\n')); err != nil {
		return fmt.Errorf("QMP %s: %w", command, err)
	}
	for {
		m, err := q.read()
		switch {
		case err != nil && command == "quit":
			return nil
		case err != nil:
			return err
		case m.Error != nil:
			return fmt.Errorf("QMP %s: %s: %s", command, m.Error.Class, m.Error.Desc)
		case m.Return != nil:
			return nil
		}
	}
}
