package customize

import (
	"fmt"
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

// opSpec describes an option: how many colon-separated fields its
// argument has (the last may hold colons) and what it means.
type opSpec struct {
	fields int
	syntax string
	help   string
}

// specs are the file options of virt-customize qimg implements.
var specs = map[string]opSpec{
	"upload":      {2, "LOCAL:REMOTE", "upload a local file to REMOTE (a file name, or an existing directory)"},
	"copy-in":     {2, "LOCALPATH:REMOTEDIR", "copy local files or directories recursively into REMOTEDIR, keeping modes and symbolic links"},
	"write":       {2, "REMOTE:CONTENT", "write CONTENT to the file REMOTE"},
	"append-line": {2, "REMOTE:LINE", "append LINE (and a newline) to REMOTE, creating it if missing"},
	"mkdir":       {1, "DIR", "create the directory DIR and its parents"},
	"delete":      {1, "PATH", "delete a file, or a directory and everything in it"},
	"move":        {2, "SOURCE:DEST", "move SOURCE to DEST (into DEST if it is a directory)"},
	"link":        {2, "TARGET:LINK[:LINK...]", "create symbolic links LINK pointing at TARGET"},
	"chmod":       {2, "MODE:PATH", "set the permissions (octal) of PATH"},
	"chown":       {3, "UID:GID:PATH", "set the owner and group (numbers) of PATH"},
	"touch":       {1, "PATH", "create an empty file, or update the times of an existing one"},

	"hostname":               {1, "NAME", "set the hostname (/etc/hostname, /etc/hosts, the RHEL and SUSE files)"},
	"root-password":          {1, "SELECTOR", "set root's password: password:PASS, file:FILE, random, disabled, locked (SHA-512 crypt)"},
	"password":               {2, "USER:SELECTOR", "set a user's password (selectors as for --root-password)"},
	"ssh-inject":             {1, "USER[:file:PATH|:string:KEY]", "add an ssh public key to the user's authorized_keys"},
	"timezone":               {1, "ZONE", "set the time zone (Europe/Paris, UTC, ...)"},
	"firstboot-command":      {1, "CMD", "run CMD once at the next boot (a systemd oneshot unit)"},
	"firstboot":              {1, "SCRIPT", "run the local script SCRIPT once at the next boot"},
	"cloud-init-datasources": {1, "LIST", "make cloud-init read metadata from these sources only (OpenStack,ConfigDrive,NoCloud)"},
	"growpart":               {1, "on|off", "grow the root partition and filesystem at first boot (cloud-init growpart)"},
	"cloud-config":           {1, "FILE", "install FILE as a cloud.cfg.d drop-in, after checking it as cloud-init would (errors with line numbers)"},
}

// offline are virt-customize options that run programs in the guest,
// which qimg, editing offline, cannot do; Parse refuses them with what
// to use instead.
var offline = map[string]bool{"run-command": true, "run": true, "install": true, "update": true, "uninstall": true, "sm-register": true}

// OfflineNames lists the refused options, for the command line.
func OfflineNames() []string {
	return []string{"run-command", "run", "install", "update", "uninstall", "sm-register"}
}

// Names lists the options in the order virt-customize documents them.
func Names() []string {
	return []string{"upload", "copy-in", "write", "append-line", "mkdir", "delete", "move", "link", "chmod", "chown", "touch",
		"hostname", "root-password", "password", "ssh-inject", "timezone", "firstboot-command", "firstboot",
		"cloud-init-datasources", "growpart", "cloud-config"}
}

// Syntax and Help describe an option for --help.
func Syntax(name string) string { return specs[name].syntax }
func Help(name string) string   { return specs[name].help }

// Parse checks an option's argument and returns the Op.
func Parse(name, arg string) (Op, error) {
	if offline[name] {
		return Op{}, fmt.Errorf("--%s would run programs inside the guest, which qimg does not boot: use --firstboot-command to run it at the next boot, or cloud-init's packages: and runcmd: in a seed (qimg seed --user-data)", name)
	}
	spec, ok := specs[name]
	if !ok {
		return Op{}, fmt.Errorf("unknown operation --%s", name)
	}
	op := Op{Name: name, Arg: arg}
	f := op.fields()
	required := f
	if name == "write" || name == "append-line" {
		required = f[:1] // the content may be empty
	}
	if len(f) < spec.fields || slicesContainEmpty(required) {
		return Op{}, fmt.Errorf("--%s: expected %s, got %q", name, spec.syntax, arg)
	}
	switch name {
	case "chmod":
		if _, err := strconv.ParseUint(f[0], 8, 32); err != nil || len(f[0]) > 5 {
			return Op{}, fmt.Errorf("--chmod: %q is not an octal mode", f[0])
		}
	case "chown":
		for _, id := range f[:2] {
			if _, err := strconv.ParseUint(id, 10, 32); err != nil {
				return Op{}, fmt.Errorf("--chown: %q is not a number (names are not looked up)", id)
			}
		}
	}
	return op, nil
}

// fields splits the argument: into as many fields as the option has,
// the last keeping any further colons, except --link, whose links are
// all fields after the target.
func (o Op) fields() []string {
	n := specs[o.Name].fields
	switch o.Name {
	case "link":
		n = -1
	case "ssh-inject", "root-password", "firstboot-command", "hostname", "timezone", "firstboot", "cloud-init-datasources", "growpart", "cloud-config":
		return []string{o.Arg}
	}
	return strings.SplitN(o.Arg, ":", n)
}

func slicesContainEmpty(s []string) bool {
	for _, x := range s {
		if x == "" {
			return true
		}
	}
	return false
}
