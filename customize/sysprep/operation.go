package sysprep

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/qimg/qimg/customize"
	"github.com/qimg/qimg/guestfs/inspect"
)

// Operation is one named, selectable cleanup, as virt-sysprep's
// operations are.
type Operation struct {
	Name        string
	Description string
	// DefaultOn operations run when none are selected.
	DefaultOn bool
	// last operations run after all the others (selinux-relabel must
	// see every file the others created).
	last    bool
	perform func(*guest) error
}

// Operations lists every operation, sorted by name.
func Operations() []Operation {
	ops := slices.Concat(identityOps(), networkOps(), cloudOps(), fileOps(), rhelOps())
	slices.SortFunc(ops, func(a, b Operation) int { return strings.Compare(a.Name, b.Name) })
	return ops
}

// Defaults lists the operations that run when none are selected.
func Defaults() []Operation {
	var ops []Operation
	for _, op := range Operations() {
		if op.DefaultOn {
			ops = append(ops, op)
		}
	}
	return ops
}

// Lookup finds an operation by name.
func Lookup(name string) (Operation, bool) {
	for _, op := range Operations() {
		if op.Name == name {
			return op, true
		}
	}
	return Operation{}, false
}

// notDone are virt-sysprep's operations qimg does not have, with the
// reason, so that asking for one says why instead of "unknown".
var notDone = map[string]string{
	"ca-certificates": "removing CA certificates needs the guest's CA store rebuilt (update-ca-trust), which qimg cannot run",
	"customize":       "use qimg customize (or qimg inject) for virt-customize's options",
	"fs-uuids":        "qimg does not change filesystem UUIDs (and fstab and the boot loader would need them too)",
	"ipa-client":      "removing the IPA CA certificate needs the guest's CA store rebuilt, which qimg cannot run",
	"lvm-uuids":       "qimg does not rewrite LVM metadata",
	"script":          "qimg runs no host scripts against the guest",
	"user-account":    "qimg does not remove user accounts",
}

// Run performs ops on the guest's filesystem (os is what inspection
// found on it), in name order with selinux-relabel last, logging each
// change to g.Log, and commits them at once. On an error nothing is
// committed.
func Run(ctx context.Context, g *customize.Guest, os inspect.OS, ops []Operation) error {
	if os.Type != "linux" {
		return fmt.Errorf("the guest is %s; qimg sysprep prepares Linux guests only", describeOS(os))
	}
	s := &guest{fs: g.FS, os: os, log: g.Log, budget: walkBudget}
	err := s.performAll(ctx, ops)
	if err == nil {
		err = g.FS.Commit(ctx)
	}
	if err != nil {
		if d, ok := g.FS.(interface{ Discard() error }); ok {
			d.Discard()
		}
		return err
	}
	return nil
}

func describeOS(os inspect.OS) string {
	if os.ProductName != "" {
		return os.ProductName
	}
	if os.Type != "" {
		return os.Type
	}
	return "not an operating system qimg recognises"
}

func (g *guest) performAll(ctx context.Context, ops []Operation) error {
	ordered := slices.Clone(ops)
	slices.SortStableFunc(ordered, func(a, b Operation) int {
		if a.last != b.last {
			if a.last {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Name, b.Name)
	})
	for _, op := range ordered {
		if err := ctx.Err(); err != nil {
			return err
		}
		g.logf("Performing %q ...", op.Name)
		if err := op.perform(g); err != nil {
			return fmt.Errorf("%s: %w", op.Name, err)
		}
	}
	relabel := slices.ContainsFunc(ops, func(op Operation) bool { return op.Name == "selinux-relabel" })
	if g.created && !relabel && g.selinuxEnabled() {
		g.logf("Warning: files were created on an SELinux guest and selinux-relabel was not selected: they have no label")
	}
	return nil
}

// Select builds the set of operations from the command line as
// virt-sysprep does: --enable LIST names exactly the operations to run;
// each --operations LIST adds names to the set (starting from the
// --enable set, or from nothing), and "-name" removes one; "defaults"
// and "all" stand for those groups. With neither, the defaults run.
func Select(enable string, operations []string) ([]Operation, error) {
	if enable == "" && len(operations) == 0 {
		return Defaults(), nil
	}
	set := map[string]bool{}
	if enable != "" {
		for _, name := range strings.Split(enable, ",") {
			if err := add(set, name, "--enable"); err != nil {
				return nil, err
			}
		}
	}
	for _, list := range operations {
		for _, name := range strings.Split(list, ",") {
			var err error
			if rest, ok := strings.CutPrefix(name, "-"); ok {
				err = remove(set, rest)
			} else {
				err = add(set, name, "--operations")
			}
			if err != nil {
				return nil, err
			}
		}
	}
	var ops []Operation
	for _, op := range Operations() {
		if set[op.Name] {
			ops = append(ops, op)
		}
	}
	return ops, nil
}

func add(set map[string]bool, name, option string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s: empty operation name", option)
	case option == "--operations" && name == "defaults":
		for _, op := range Defaults() {
			set[op.Name] = true
		}
	case option == "--operations" && name == "all":
		for _, op := range Operations() {
			set[op.Name] = true
		}
	default:
		if err := known(name, option); err != nil {
			return err
		}
		set[name] = true
	}
	return nil
}

func remove(set map[string]bool, name string) error {
	switch name {
	case "":
		return fmt.Errorf("--operations: empty operation name")
	case "defaults":
		for _, op := range Defaults() {
			delete(set, op.Name)
		}
	case "all":
		clear(set)
	default:
		if err := known(name, "--operations"); err != nil {
			return err
		}
		delete(set, name)
	}
	return nil
}

// known checks an operation name, saying which names are valid.
func known(name, option string) error {
	if _, ok := Lookup(name); ok {
		return nil
	}
	if why, ok := notDone[name]; ok {
		return fmt.Errorf("%s: %q is a virt-sysprep operation qimg does not do: %s", option, name, why)
	}
	var names []string
	for _, op := range Operations() {
		names = append(names, op.Name)
	}
	return fmt.Errorf("%s: %q is not a known operation; the operations are: %s", option, name, strings.Join(names, ", "))
}

// List writes the operations in virt-sysprep's --list-operations form:
// the name, "*" for those on by default, and the description.
func List() string {
	var b strings.Builder
	for _, op := range Operations() {
		mark := " "
		if op.DefaultOn {
			mark = "*"
		}
		fmt.Fprintf(&b, "%s %s %s\n", op.Name, mark, op.Description)
	}
	return b.String()
}
