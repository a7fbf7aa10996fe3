package customize

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/qimg/qimg/internal/lazyregexp"
)

// Firstboot scripts run once, in order, at the guest's next boot, from a
// systemd oneshot unit that finds them in firstbootDir; each is removed
// after it ran (its output goes to /var/log/qimg-firstboot.log and the
// console), so none runs twice and a failing one cannot loop the boot.
const (
	firstbootDir    = "usr/local/lib/qimg/firstboot.d"
	firstbootRunner = "usr/local/lib/qimg/firstboot.sh"
	firstbootUnit   = "etc/systemd/system/qimg-firstboot.service"
	firstbootWants  = "etc/systemd/system/multi-user.target.wants/qimg-firstboot.service"
)

const firstbootRunnerScript = `#!/bin/sh
# Installed by qimg: runs the scripts of /usr/local/lib/qimg/firstboot.d
# once each, in name order, then removes them.
dir=/usr/local/lib/qimg/firstboot.d
log=/var/log/qimg-firstboot.log
for script in "$dir"/*; do
	[ -f "$script" ] || continue
	echo "qimg-firstboot: running $script" | tee -a "$log"
	if sh "$script" >>"$log" 2>&1; then
		echo "qimg-firstboot: $script done" | tee -a "$log"
	else
		echo "qimg-firstboot: $script failed with status $?" | tee -a "$log"
	fi
	rm -f "$script"
done
`

const firstbootUnitFile = `[Unit]
Description=qimg firstboot scripts
After=network-online.target
Wants=network-online.target
ConditionDirectoryNotEmpty=/usr/local/lib/qimg/firstboot.d

[Service]
Type=oneshot
ExecStart=/usr/local/lib/qimg/firstboot.sh
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
`

var unsafeName = lazyregexp.New(`[^A-Za-z0-9._-]+`)

// firstboot installs a script to run at the next boot (the runner and
// its enabled unit the first time).
func (g *Guest) firstboot(label, script string) error {
	if !g.isDir("etc/systemd") && !g.isDir("lib/systemd") && !g.isDir("usr/lib/systemd") {
		return fmt.Errorf("the guest has no systemd, which qimg's firstboot scripts need: put the command in cloud-init's runcmd instead (qimg seed --user-data)")
	}
	if err := g.mkdirAll(firstbootDir); err != nil {
		return err
	}
	if _, err := g.FS.Stat(firstbootRunner); err != nil {
		steps := []func() error{
			func() error { return g.writeKeepingMode(firstbootRunner, firstbootRunnerScript) },
			func() error { return g.FS.Chmod(firstbootRunner, 0o755) },
			func() error { return g.mkdirAll(path.Dir(firstbootUnit)) },
			func() error { return g.writeKeepingMode(firstbootUnit, firstbootUnitFile) },
			func() error { return g.mkdirAll(path.Dir(firstbootWants)) },
			func() error { return g.FS.Symlink("/"+firstbootUnit, firstbootWants) },
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return err
			}
		}
	}
	ents, err := fs.ReadDir(g.FS, firstbootDir)
	if err != nil {
		return err
	}
	base := strings.Trim(unsafeName.ReplaceAllString(label, "-"), "-")
	if len(base) > 40 {
		base = base[:40]
	}
	n := path.Join(firstbootDir, fmt.Sprintf("%04d-%s", len(ents)+1, base))
	if err := g.writeKeepingMode(n, script); err != nil {
		return err
	}
	return g.FS.Chmod(n, 0o755)
}

// firstbootCommand runs one shell command at the next boot.
func (g *Guest) firstbootCommand(cmd string) error {
	return g.firstboot(cmd, "#!/bin/sh\n"+cmd+"\n")
}

// firstbootScript installs a local script file to run at the next boot.
func (g *Guest) firstbootScript(local string) error {
	b, err := os.ReadFile(local)
	if err != nil {
		return err
	}
	return g.firstboot(path.Base(local), string(b))
}
