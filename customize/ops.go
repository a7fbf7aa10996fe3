package customize

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Op is one edit, as given on the command line: the option's name
// without dashes ("upload") and its argument.
type Op struct {
	Name string
	Arg  string
}

// String is the option as typed.
func (o Op) String() string { return fmt.Sprintf("--%s %s", o.Name, o.Arg) }

// opSpec is an option: its argument's colon-separated fields, its help,
// the line logged when it runs, and what it does.
type opSpec struct {
	name string
	// fields is how many fields the argument has, the last keeping any
	// further colons; 0: the whole argument is one field; -1: every
	// colon separates (--link's links).
	fields int
	syntax string
	help   string
	// optional is set when the last field may be empty (file contents).
	optional bool
	check    func(f []string) error
	log      func(f []string) string
	run      func(g *Guest, f []string) error
}

// opSpecs are the options of virt-customize qimg implements, in the order
// virt-customize documents them. It is a function, not a variable: the
// table refers to the Guest methods, which refer back to it.
func opSpecs() []opSpec {
	return []opSpec{
		{name: "upload", fields: 2, syntax: "LOCAL:REMOTE", help: "upload a local file to REMOTE (a file name, or an existing directory)",
			log: logf("Uploading: %s to %s"), run: func(g *Guest, f []string) error { return g.upload(f[0], f[1]) }},
		{name: "copy-in", fields: 2, syntax: "LOCALPATH:REMOTEDIR", help: "copy local files or directories recursively into REMOTEDIR, keeping modes and symbolic links",
			log: logf("Copying: %s to %s"), run: func(g *Guest, f []string) error { return g.copyIn(f[0], f[1]) }},
		{name: "write", fields: 2, syntax: "REMOTE:CONTENT", help: "write CONTENT to the file REMOTE", optional: true,
			log: logf("Writing: %s"), run: func(g *Guest, f []string) error { return g.writeFile(f[0], []byte(f[1])) }},
		{name: "append-line", fields: 2, syntax: "REMOTE:LINE", help: "append LINE (and a newline) to REMOTE, creating it if missing", optional: true,
			log: logf("Appending line to %s"), run: func(g *Guest, f []string) error { return g.appendLine(f[0], f[1]) }},
		{name: "mkdir", fields: 1, syntax: "DIR", help: "create the directory DIR and its parents",
			log: logf("Making directory: %s"), run: func(g *Guest, f []string) error { return g.mkdirAll(name(f[0])) }},
		{name: "delete", fields: 1, syntax: "PATH", help: "delete a file, or a directory and everything in it",
			log: logf("Deleting: %s"), run: func(g *Guest, f []string) error { return g.delete(f[0]) }},
		{name: "move", fields: 2, syntax: "SOURCE:DEST", help: "move SOURCE to DEST (into DEST if it is a directory)",
			log: logf("Moving: %s -> %s"), run: func(g *Guest, f []string) error { return g.move(f[0], f[1]) }},
		{name: "link", fields: -1, syntax: "TARGET:LINK[:LINK...]", help: "create symbolic links LINK pointing at TARGET",
			log: func(f []string) string { return fmt.Sprintf("Linking: %s -> %s", strings.Join(f[1:], " "), f[0]) },
			run: (*Guest).links},
		{name: "chmod", fields: 2, syntax: "MODE:PATH", help: "set the permissions (octal) of PATH", check: checkMode,
			log: func(f []string) string { return fmt.Sprintf("Changing permissions of %s to %s", f[1], f[0]) },
			run: (*Guest).chmod},
		{name: "chown", fields: 3, syntax: "UID:GID:PATH", help: "set the owner and group (numbers) of PATH", check: checkIDs,
			log: func(f []string) string { return fmt.Sprintf("Changing owner of %s to %s:%s", f[2], f[0], f[1]) },
			run: (*Guest).chown},
		{name: "touch", fields: 1, syntax: "PATH", help: "create an empty file, or update the times of an existing one",
			log: logf("Touching: %s"), run: func(g *Guest, f []string) error { return g.touch(f[0]) }},

		{name: "hostname", syntax: "NAME", help: "set the hostname (/etc/hostname, /etc/hosts, the RHEL and SUSE files)",
			log: logf("Setting the hostname: %s"), run: func(g *Guest, f []string) error { return g.setHostname(f[0]) }},
		{name: "root-password", syntax: "SELECTOR", help: "set root's password: password:PASS, file:FILE, random, disabled, locked (SHA-512 crypt)",
			log: func([]string) string { return "Setting passwords" }, run: func(g *Guest, f []string) error { return g.setPassword("root", f[0]) }},
		{name: "password", fields: 2, syntax: "USER:SELECTOR", help: "set a user's password (selectors as for --root-password)",
			log: logf("Setting the password of %s"), run: func(g *Guest, f []string) error { return g.setPassword(f[0], f[1]) }},
		{name: "ssh-inject", syntax: "USER[:file:PATH|:string:KEY]", help: "add an ssh public key to the user's authorized_keys",
			log: func(f []string) string {
				user, _, _ := strings.Cut(f[0], ":")
				return "SSH key inject: " + user
			},
			run: func(g *Guest, f []string) error { return g.sshInject(f[0]) }},
		{name: "timezone", syntax: "ZONE", help: "set the time zone (Europe/Paris, UTC, ...)",
			log: logf("Setting the timezone: %s"), run: func(g *Guest, f []string) error { return g.setTimezone(f[0]) }},
		{name: "firstboot-command", syntax: "CMD", help: "run CMD once at the next boot (a systemd oneshot unit)",
			log: logf("Installing firstboot command: %s"), run: func(g *Guest, f []string) error { return g.firstbootCommand(f[0]) }},
		{name: "firstboot", syntax: "SCRIPT", help: "run the local script SCRIPT once at the next boot",
			log: logf("Installing firstboot script: %s"), run: func(g *Guest, f []string) error { return g.firstbootScript(f[0]) }},
		{name: "cloud-init-datasources", syntax: "LIST", help: "make cloud-init read metadata from these sources only (OpenStack,ConfigDrive,NoCloud)",
			log: logf("Setting cloud-init datasources: %s"), run: func(g *Guest, f []string) error { return g.setDatasources(f[0]) }},
		{name: "growpart", syntax: "on|off", help: "grow the root partition and filesystem at first boot (cloud-init growpart)",
			log: logf("Setting cloud-init growpart: %s"), run: func(g *Guest, f []string) error { return g.setGrowpart(f[0]) }},
		{name: "cloud-config", syntax: "FILE", help: "install FILE as a cloud.cfg.d drop-in, after checking it as cloud-init would (errors with line numbers)",
			log: logf("Installing cloud-config drop-in: %s"), run: func(g *Guest, f []string) error { return g.installCloudConfig(f[0]) }},
	}
}

// logf makes a log line from the argument's first fields.
func logf(format string) func(f []string) string {
	n := strings.Count(format, "%s")
	return func(f []string) string {
		args := make([]any, n)
		for i := range args {
			args[i] = f[i]
		}
		return fmt.Sprintf(format, args...)
	}
}

// lookupSpec finds an option by name.
func lookupSpec(name string) (opSpec, bool) {
	for _, s := range opSpecs() {
		if s.name == name {
			return s, true
		}
	}
	return opSpec{}, false
}

// offline are virt-customize options that run programs in the guest,
// which qimg, editing offline, cannot do; Parse refuses them with what
// to use instead.
var offline = []string{"run-command", "run", "install", "update", "uninstall", "sm-register"}

// OfflineNames lists the refused options, for the command line.
func OfflineNames() []string { return slices.Clone(offline) }

// Names lists the options in the order virt-customize documents them.
func Names() []string {
	var names []string
	for _, s := range opSpecs() {
		names = append(names, s.name)
	}
	return names
}

// Syntax and Help describe an option for --help.
func Syntax(name string) string { s, _ := lookupSpec(name); return s.syntax }
func Help(name string) string   { s, _ := lookupSpec(name); return s.help }

// Parse checks an option's argument and returns the Op.
func Parse(name, arg string) (Op, error) {
	if slices.Contains(offline, name) {
		return Op{}, fmt.Errorf("--%s would run programs inside the guest, which qimg does not boot: use --firstboot-command to run it at the next boot, or cloud-init's packages: and runcmd: in a seed (qimg seed --user-data)", name)
	}
	spec, ok := lookupSpec(name)
	if !ok {
		return Op{}, fmt.Errorf("unknown operation --%s", name)
	}
	f := spec.split(arg)
	required := f
	if spec.optional {
		required = f[:len(f)-1]
	}
	if len(f) < spec.minFields() || slices.Contains(required, "") {
		return Op{}, fmt.Errorf("--%s: expected %s, got %q", name, spec.syntax, arg)
	}
	if spec.check != nil {
		if err := spec.check(f); err != nil {
			return Op{}, fmt.Errorf("--%s: %w", name, err)
		}
	}
	return Op{Name: name, Arg: arg}, nil
}

// checkMode checks --chmod's octal mode.
func checkMode(f []string) error {
	if _, err := strconv.ParseUint(f[0], 8, 32); err != nil || len(f[0]) > 5 {
		return fmt.Errorf("%q is not an octal mode", f[0])
	}
	return nil
}

// checkIDs checks --chown's numeric owner and group.
func checkIDs(f []string) error {
	for _, id := range f[:2] {
		if _, err := strconv.ParseUint(id, 10, 32); err != nil {
			return fmt.Errorf("%q is not a number (names are not looked up)", id)
		}
	}
	return nil
}

// minFields is how many fields a valid argument has at least.
func (s opSpec) minFields() int {
	switch {
	case s.fields < 0:
		return 2 // a target and one link
	case s.fields == 0:
		return 1
	}
	return s.fields
}

// split splits an argument into the option's fields.
func (s opSpec) split(arg string) []string {
	if s.fields == 0 {
		return []string{arg}
	}
	return strings.SplitN(arg, ":", s.fields)
}
