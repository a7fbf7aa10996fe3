package cloudinit

import (
	"fmt"
	"strings"

	"github.com/qimg/qimg/image"
)

// Problem is one thing found in a file, at a line.
type Problem struct {
	Line    int // from 1; 0 when it is about the whole file
	Message string
}

// String is the problem as Error prints it, without the file name.
func (p Problem) String() string {
	if p.Line == 0 {
		return p.Message
	}
	return fmt.Sprintf("%d: %s", p.Line, p.Message)
}

// Error lists every problem that makes a file unusable, in line order.
// It matches image.ErrInvalidArgument with errors.Is.
type Error struct {
	Name     string
	Problems []Problem
}

// Error prints one problem a line, each as "name:line: message".
func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Name)
		b.WriteByte(':')
		if p.Line > 0 {
			fmt.Fprintf(&b, "%d:", p.Line)
		}
		b.WriteByte(' ')
		b.WriteString(p.Message)
	}
	return b.String()
}

// Is makes errors.Is(err, image.ErrInvalidArgument) hold.
func (e *Error) Is(target error) bool { return target == image.ErrInvalidArgument }
