package sysprep

import (
	"fmt"
	"strings"
)

// networkdEdit is what removing the MAC bindings does to one
// systemd-networkd file.
type networkdEdit struct {
	out     []byte   // the new contents; nil when unchanged
	changes []string // one line per edit
	// remove is set for a .link file that matched devices by MAC
	// address only: without it, it would match (and rename) every
	// device, so the file goes, as udev's persistent-net rules do.
	remove bool
}

// isMACKey are the [Match] keys that bind a file to hardware addresses.
func isMACKey(key string) bool { return key == "MACAddress" || key == "PermanentMACAddress" }

// editNetworkd removes MAC bindings from a .link, .network or .netdev
// file (kind is the extension without the dot): [Match] MACAddress= and
// PermanentMACAddress= lines, and MACAddress= lines that set a device's
// address ([Link] or [NetDev]). A .network whose [Match] held nothing
// but MAC addresses matches Type=ether instead, so it configures
// whichever Ethernet device the clone has.
func editNetworkd(kind string, data []byte) networkdEdit {
	entries := parseINI(data, true)
	otherMatch := false
	for _, e := range entries {
		if e.section == "Match" && e.key != "" && !isMACKey(e.key) {
			otherMatch = true
		}
	}
	var ed networkdEdit
	var kept []iniEntry
	replaced := false
	for _, e := range entries {
		switch {
		case e.section == "Match" && isMACKey(e.key):
			ed.changes = append(ed.changes, fmt.Sprintf("removing %q", strings.TrimSpace(e.text)))
			if kind == "network" && !otherMatch && !replaced {
				replaced = true
				ed.changes = append(ed.changes, `matching "Type=ether" instead`)
				kept = append(kept, iniEntry{text: "Type=ether", eol: e.eol})
			}
		case (e.section == "Link" || e.section == "NetDev") && e.key == "MACAddress" && isMAC(e.value):
			ed.changes = append(ed.changes, fmt.Sprintf("removing %q", strings.TrimSpace(e.text)))
		default:
			kept = append(kept, e)
		}
	}
	if len(ed.changes) == 0 {
		return ed
	}
	if kind == "link" && !otherMatch && anyMatchMAC(entries) {
		return networkdEdit{remove: true}
	}
	ed.out = joinINI(kept)
	return ed
}

func anyMatchMAC(entries []iniEntry) bool {
	for _, e := range entries {
		if e.section == "Match" && isMACKey(e.key) {
			return true
		}
	}
	return false
}

// isMAC reports whether s is a hardware address: 6 to 20 hex byte
// pairs separated by ':' or '-' (Ethernet, InfiniBand).
func isMAC(s string) bool {
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == '-' })
	if len(parts) < 6 || len(parts) > 20 || strings.Count(s, ":")+strings.Count(s, "-") != len(parts)-1 {
		return false
	}
	for _, p := range parts {
		if len(p) != 2 || !isHex(p[0]) || !isHex(p[1]) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// editKeyfile removes the MAC bindings of a NetworkManager keyfile: the
// mac-address= key of any section (the profile then applies to any
// device of its type, or to its interface-name=) and a
// cloned-mac-address= that names an address (clones would share it);
// cloned-mac-address=random, stable, preserve or permanent stay.
func editKeyfile(data []byte) (out []byte, changes []string) {
	var kept []iniEntry
	for _, e := range parseINI(data, false) {
		if e.key == "mac-address" || (e.key == "cloned-mac-address" && isMAC(e.value)) {
			changes = append(changes, fmt.Sprintf("removing %q from [%s]", strings.TrimSpace(e.text), e.section))
			continue
		}
		kept = append(kept, e)
	}
	if len(changes) == 0 {
		return nil, nil
	}
	return joinINI(kept), changes
}
