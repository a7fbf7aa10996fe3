package fstree_test

import (
	"fmt"
	"io/fs"

	"github.com/qimg/qimg/guestfs/internal/fstree"
)

// node is an inode of a two-entry tree: the root and a link that climbs.
type node struct{ dir bool }

func (n *node) IsDir() bool     { return n.dir }
func (n *node) IsSymlink() bool { return !n.dir }

type tree struct{ root, link *node }

func (t tree) Root() (*node, error) { return t.root, nil }
func (t tree) Child(dir *node, name string) (*node, error) {
	if name == "up" {
		return t.link, nil
	}
	return nil, fs.ErrNotExist
}
func (t tree) Target(*node) (string, error) { return "../../..", nil }
func (t tree) Errorf(kind error, format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, kind)...)
}

// A symbolic link that climbs above the root stops at it: the guest's
// names never reach the host.
func ExampleResolve() {
	t := tree{root: &node{dir: true}, link: &node{}}
	in, err := fstree.Resolve[*node](t, "open", "up", true)
	fmt.Println(in == t.root, err)
	// Output: true <nil>
}
