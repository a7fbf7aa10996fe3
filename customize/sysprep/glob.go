package sysprep

import (
	"errors"
	"io/fs"
	"path"
	"strings"
	"syscall"
)

// glob expands an absolute shell pattern ("/var/log/*.log*") inside the
// guest as glob(3) does, which virt-sysprep's lists assume: "*" and "?"
// do not match a leading dot, matches come sorted, and a directory that
// is missing or not a directory matches nothing. It returns guest names
// ("var/log/syslog"). Links in the leading directories are followed
// inside the guest.
func (g *guest) glob(pattern string) ([]string, error) {
	parts := strings.Split(strings.Trim(pattern, "/"), "/")
	found := []string{"."}
	for _, part := range parts {
		var next []string
		for _, dir := range found {
			matches, err := g.globPart(dir, part)
			if err != nil {
				return nil, err
			}
			next = append(next, matches...)
		}
		found = next
	}
	return found, nil
}

// globPart matches one pattern element in dir.
func (g *guest) globPart(dir, part string) ([]string, error) {
	if !hasMeta(part) {
		name := path.Join(dir, part)
		ok, err := g.exists(name)
		if err != nil && !notDirectory(err) {
			return nil, err
		}
		if !ok {
			return nil, nil
		}
		return []string{name}, nil
	}
	if !g.isDir(dir) {
		return nil, nil
	}
	ents, err := g.readDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if globMatch(part, e.Name()) {
			out = append(out, path.Join(dir, e.Name()))
		}
	}
	return out, nil
}

// notDirectory reports a lookup through something that is not a
// directory ("/etc/hostname/x"), which matches nothing.
func notDirectory(err error) bool {
	return errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrInvalid)
}

func hasMeta(s string) bool { return strings.ContainsAny(s, "*?[\\") }

// globMatch matches a name against one element; a leading dot must be
// matched literally.
func globMatch(pattern, name string) bool {
	if strings.HasPrefix(name, ".") && !strings.HasPrefix(pattern, ".") {
		return false
	}
	ok, _ := path.Match(pattern, name)
	return ok
}
