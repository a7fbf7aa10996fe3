// Command qimg is a pure-Go replacement for qemu-img: it takes qemu-img's
// commands, flags and option names, prints what qemu-img prints and exits
// with qemu-img's exit codes, so scripts and people can switch without
// relearning anything.
//
// This package only parses command lines and formats results; the work is
// done by packages convert, qcow2 and raw, and the qemu-img text
// conventions live in cmd/qimg/internal/qfmt and cmd/qimg/internal/report.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/qimg/qimg/guestfs/redo"
	"github.com/qimg/qimg/image"
)

// version is the qimg version; set at link time with
// -ldflags "-X main.version=…".
var version = "0.1.0-dev"

// qemuCompat is the qemu-img release whose behaviour qimg reproduces.
const qemuCompat = "7.2"

func main() {
	ctx, stop := commandContext(os.Args[1:])
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// readOnly are the commands that only read images: an interrupt ends
// them at once, as it ends qemu-img, since they leave nothing behind.
var readOnly = []string{"info", "map", "compare", "measure", "version", "ls", "cat", "filesystems", "inspect"}

// versionOnly reports whether args only ask for the version
// (--version or cobra's -v), which needs neither a command nor a signal
// handler.
func versionOnly(args []string) bool {
	return len(args) == 1 && (args[0] == "--version" || args[0] == "-v")
}

// repairs reports whether check's arguments ask for a repair (-r,
// --repair, or r among combined short flags).
func repairs(args []string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, "--repair") || !strings.HasPrefix(a, "--") && strings.HasPrefix(a, "-") && strings.Contains(a, "r") {
			return true
		}
	}
	return false
}

// commandContext is the context a command line runs under. Every command
// that writes cancels it on SIGINT and SIGTERM, to remove what it has not
// finished and say so; the read-only ones skip catching signals, which
// costs a goroutine, a thread and about 3 ms of CPU time at start-up,
// more than qemu-img's whole info takes.
func commandContext(args []string) (context.Context, context.CancelFunc) {
	if versionOnly(args) || len(args) > 0 && (slices.Contains(readOnly, args[0]) || args[0] == "check" && !repairs(args[1:])) {
		return context.WithCancel(context.Background())
	}
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// exitError carries an exit code and an optional message to print.
type exitError struct {
	code  int
	msg   string // printed as "qimg: msg" unless empty
	usage bool   // add "Try 'qimg --help' for more information"
	hint  string // printed after the message without the "qimg: " prefix
	// openReason is, for a file that did not open, the message after
	// "Could not open 'FILE': ", for callers that name the file otherwise.
	openReason string
}

// hinted adds a hint line, which qemu-img prints unprefixed.
func hinted(err error, hint string) error {
	if ee, ok := err.(*exitError); ok {
		ee.hint = hint
	}
	return err
}

// isPathError reports whether err comes from the file system (for path,
// or any path if path is empty).
func isPathError(err error, path string) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && (path == "" || pe.Path == path)
}

func (e *exitError) Error() string { return e.msg }

// fail returns an error that exits with code 1 after printing msg.
func fail(format string, args ...any) error {
	return &exitError{code: 1, msg: fmt.Sprintf(format, args...)}
}

// usageError is a command-line mistake: qemu-img prints the message and a
// pointer to --help, and exits with 1.
func usageError(format string, args ...any) error {
	return &exitError{code: 1, msg: fmt.Sprintf(format, args...), usage: true}
}

// exitCode exits with code without printing anything.
func exitCode(code int) error { return &exitError{code: code} }

// env is what commands write to.
type env struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
	// untrusted refuses images that name a backing or data file
	// (--untrusted): a name inside an image must not make qimg read an
	// arbitrary host file.
	untrusted bool
	// redoTrace is called before each step of an edit's redo log (the
	// crash tests stop the process there); nil outside tests.
	redoTrace redo.Trace
}

// chainPolicy is how commands that read guest data treat backing files.
func (e *env) chainPolicy() image.BackingPolicy {
	if e.untrusted {
		return image.RefuseBacking
	}
	return image.FollowBacking
}

// run executes one qimg command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runEnv(&env{ctx: ctx, stdout: stdout, stderr: stderr}, args)
}

// runEnv executes one command line in e.
func runEnv(e *env, args []string) int {
	stdout, stderr := e.stdout, e.stderr
	root := newRoot(e, args)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(e.ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		// cobra's own errors: unknown flag, unknown command, bad value.
		ee = &exitError{code: 1, msg: cobraMessage(err), usage: true}
	}
	if ee.msg != "" {
		for _, line := range strings.Split(strings.TrimRight(ee.msg, "\n"), "\n") {
			fmt.Fprintf(stderr, "qimg: %s\n", line)
		}
	}
	if ee.hint != "" {
		fmt.Fprintln(stderr, ee.hint)
	}
	if ee.usage {
		fmt.Fprintln(stderr, "Try 'qimg --help' for more information")
	}
	return ee.code
}

func cobraMessage(err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "unknown command") {
		// unknown command "foo" for "qimg"
		if i, j := strings.Index(msg, `"`), strings.Index(msg, `" for`); i >= 0 && j > i {
			return "Command not found: " + msg[i+1:j]
		}
	}
	return msg
}

func newRoot(e *env, args []string) *cobra.Command {
	root := &cobra.Command{
		Use:   "qimg",
		Short: "qimg: a pure-Go qemu-img",
		Long: `qimg reads, writes, converts and checks qcow2 and raw disk images. It
accepts qemu-img's commands, flags and -o option names and prints what
qemu-img ` + qemuCompat + ` prints, with the same exit codes.

Sizes take an optional suffix k, M, G, T, P or E (powers of 1024); a bare
number is bytes. Errors are printed as "qimg: <message>" on standard
error; the exit code is 1 unless a command documents otherwise.

Backing files named inside an image are followed by commands that read
guest data (convert, compare, map, measure), resolved relative to the
image's directory as QEMU does, at most 64 levels deep. 'qimg info'
never opens them unless --backing-chain is given. For images from an
untrusted source, --untrusted makes every command refuse an image that
names a backing or external data file.`,
		Version:           version,
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		Args:              cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError("Not enough arguments")
		},
	}
	root.PersistentFlags().BoolVar(&e.untrusted, "untrusted", false,
		"refuse images that name a backing or external data file (for input from untrusted sources)")
	root.SetVersionTemplate(versionText())
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError("%s", err.Error())
	})
	root.AddCommand(subcommands(e, args)...)
	for _, c := range root.Commands() {
		c.Flags().SortFlags = false
		c.SilenceErrors, c.SilenceUsage = true, true
	}
	return root
}

// commands are qimg's commands by name, in the order help lists them.
var commands = []struct {
	name    string
	makeCmd func(*env) *cobra.Command
}{
	{"info", newInfoCmd},
	{"check", newCheckCmd},
	{"create", newCreateCmd},
	{"convert", newConvertCmd},
	{"resize", newResizeCmd},
	{"rebase", newRebaseCmd},
	{"commit", newCommitCmd},
	{"compare", newCompareCmd},
	{"map", newMapCmd},
	{"measure", newMeasureCmd},
	{"snapshot", newSnapshotCmd},
	{"bitmap", newBitmapCmd},
	{"amend", newAmendCmd},
	{"filesystems", newFilesystemsCmd},
	{"inspect", newInspectCmd},
	{"ls", newLsCmd},
	{"cat", newCatCmd},
	{"inject", newInjectCmd},
	{"customize", newCustomizeCmd},
	{"copy-in", newCopyInCmd},
	{"copy-out", newCopyOutCmd},
	{"sysprep", newSysprepCmd},
	{"seed", newSeedCmd},
	{"boot-test", newBootTestCmd},
	{"dd", newDDCmd},
	{"build", newBuildCmd},
	{"upload", newUploadCmd},
	{"image", newImageCmd},
	{"version", newVersionCmd},
}

// subcommands builds the command args name, none for a bare --version,
// or all of them when args name none (help, a flag, a mistyped
// command). Building all of them took a millisecond or two of every
// run, most of it for commands that were not run; cobra finds the
// command by name in either case.
func subcommands(e *env, args []string) []*cobra.Command {
	if versionOnly(args) {
		return nil
	}
	for _, c := range commands {
		if len(args) > 0 && c.name == args[0] {
			return []*cobra.Command{c.makeCmd(e)}
		}
	}
	all := make([]*cobra.Command, len(commands))
	for i, c := range commands {
		all[i] = c.makeCmd(e)
	}
	return all
}

func versionText() string {
	return fmt.Sprintf("qimg version %s (compatible with qemu-img %s)\n", version, qemuCompat)
}

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print qimg's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := io.WriteString(e.stdout, versionText())
			return err
		},
	}
}

// openError renders an error from opening path as qemu-img does:
// "Could not open 'path': reason".
func openError(path string, err error) error {
	return fail("Could not open '%s': %s", path, reason(path, err))
}

// reason is the text of err for a message that already names path: an
// *image.FileError about path without its name, and system errors spelled
// like strerror ("No such file or directory").
func reason(path string, err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) && (pe.Path == path || strings.HasSuffix(err.Error(), pe.Err.Error())) && pe.Err != nil {
		if errno, ok := pe.Err.(syscall.Errno); ok {
			return strerror(errno)
		}
	}
	if fe := fileError(err); fe != nil && fe.Name == path {
		return fe.Err.Error()
	}
	return err.Error()
}

// fileError is err when it is an *image.FileError, possibly joined with
// nothing else (errors.Join of one error), or nil.
func fileError(err error) *image.FileError {
	for {
		switch e := err.(type) {
		case *image.FileError:
			return e
		case interface{ Unwrap() []error }:
			if errs := e.Unwrap(); len(errs) == 1 {
				err = errs[0]
				continue
			}
		}
		return nil
	}
}

// strerror spells an errno as glibc does.
func strerror(errno syscall.Errno) string {
	s := errno.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// checkArgs returns cobra.PositionalArgs printing qemu-img's messages.
func exactArgs(n int, missing string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < n:
			return usageError("%s", missing)
		case len(args) > n:
			return usageError("Unexpected argument: %s", args[n])
		}
		return nil
	}
}

// minArgs is exactArgs for commands taking n or more arguments.
func minArgs(n int, missing string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return usageError("%s", missing)
		}
		return nil
	}
}

// checkOutput validates --output.
func checkOutput(v string) error {
	if v != "human" && v != "json" {
		return fail("--output must be used with human or json as argument.")
	}
	return nil
}
