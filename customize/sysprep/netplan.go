package sysprep

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"
)

// netplanSections are the device types of a netplan file.
var netplanSections = []string{"ethernets", "wifis", "modems", "bonds", "bridges", "vlans", "tunnels",
	"vrfs", "dummy-devices", "virtual-ethernets", "nm-devices"}

// editNetplan removes the MAC bindings of a netplan file: an interface
// matched by nothing but its MAC address is rewritten to match a name
// glob of its kind ("en*" for en... names, "eth*", "wl*", "ww*", "e*"
// for other Ethernet names) and loses its set-name, which would rename
// every device the glob matches to one name; a match with other
// criteria (name, driver) just loses its macaddress; a macaddress that
// sets a device's address is removed. The file is edited line by line
// when every change is a whole line, so comments and layout stay;
// otherwise (flow style, multi-line values) it is written back by the
// YAML encoder. changes describes each edit; out is nil when there is
// none.
func editNetplan(data []byte) (out []byte, changes []string, err error) {
	e := &netplanEditor{lines: splitLines(data), edits: map[int]*string{}, textual: true}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		docs = append(docs, &doc)
		if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
			e.network(mapValue(doc.Content[0], "network"))
		}
	}
	if len(e.changes) == 0 {
		return nil, nil, nil
	}
	if e.textual {
		return e.applyLines(), e.changes, nil
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	for _, doc := range docs {
		if err := enc.Encode(doc); err != nil {
			return nil, nil, err
		}
	}
	if err := enc.Close(); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), e.changes, nil
}

type netplanEditor struct {
	lines [][]byte
	// edits are whole-line edits by line number (1-based): nil removes
	// the line, a string replaces it.
	edits   map[int]*string
	textual bool // every change so far is in edits
	changes []string
}

func (e *netplanEditor) network(network *yaml.Node) {
	if network == nil || network.Kind != yaml.MappingNode {
		return
	}
	for _, section := range netplanSections {
		devices := mapValue(network, section)
		if devices == nil || devices.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(devices.Content); i += 2 {
			if dev := devices.Content[i+1]; dev.Kind == yaml.MappingNode {
				e.device(section, devices.Content[i].Value, dev)
			}
		}
	}
}

func (e *netplanEditor) device(section, id string, dev *yaml.Node) {
	where := section + "." + id
	if k, v := mapEntry(dev, "macaddress"); k != nil {
		e.remove(dev, k, v)
		e.changes = append(e.changes, fmt.Sprintf("%s: removing macaddress %s", where, v.Value))
	}
	mk, match := mapEntry(dev, "match")
	if mk == nil || match.Kind != yaml.MappingNode {
		return
	}
	k, v := mapEntry(match, "macaddress")
	if k == nil {
		return
	}
	if len(match.Content) > 2 {
		e.remove(match, k, v)
		e.changes = append(e.changes, fmt.Sprintf("%s: removing match macaddress %s", where, v.Value))
		return
	}
	name := id
	if sk, sv := mapEntry(dev, "set-name"); sk != nil {
		name = sv.Value
		e.remove(dev, sk, sv)
		e.changes = append(e.changes, fmt.Sprintf("%s: removing set-name %s", where, sv.Value))
	}
	glob := nameGlob(section, name)
	e.changes = append(e.changes, fmt.Sprintf("%s: matching name %q instead of macaddress %s", where, glob, v.Value))
	e.replace(match, k, v, "name", glob)
}

// nameGlob is the kernel names an interface like name has.
func nameGlob(section, name string) string {
	for _, prefix := range []string{"en", "eth", "wl", "ww"} {
		if strings.HasPrefix(name, prefix) {
			return prefix + "*"
		}
	}
	switch section {
	case "wifis":
		return "wl*"
	case "modems":
		return "ww*"
	}
	return "e*"
}

// remove deletes the entry k: v of parent.
func (e *netplanEditor) remove(parent, k, v *yaml.Node) {
	for i := 0; i+1 < len(parent.Content); i += 2 {
		if parent.Content[i] == k {
			parent.Content = append(parent.Content[:i], parent.Content[i+2:]...)
			break
		}
	}
	if !e.lineLocal(parent, k, v) || len(parent.Content) == 0 {
		e.textual = false
		return
	}
	e.edits[k.Line] = nil
}

// replace turns the entry k: v of parent into key: value.
func (e *netplanEditor) replace(parent, k, v *yaml.Node, key, value string) {
	local := e.lineLocal(parent, k, v)
	k.Value, v.Value, v.Tag, v.Style = key, value, "!!str", 0
	if !local {
		e.textual = false
		return
	}
	scalar, err := yaml.Marshal(value)
	if err != nil {
		e.textual = false
		return
	}
	line := string(e.lines[k.Line-1])
	text := line[:k.Column-1] + key + ": " + strings.TrimRight(string(scalar), "\n")
	e.edits[k.Line] = &text
}

// lineLocal reports whether the entry k: v is alone on one line, so that
// removing or replacing that line edits exactly it.
func (e *netplanEditor) lineLocal(parent, k, v *yaml.Node) bool {
	if parent.Style&yaml.FlowStyle != 0 || k.Line != v.Line || v.Kind != yaml.ScalarNode ||
		v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 || k.Anchor != "" || v.Anchor != "" ||
		v.Value == "" || strings.ContainsAny(v.Value, " \t\r\n") || k.Line < 1 || k.Line > len(e.lines) {
		return false
	}
	if _, done := e.edits[k.Line]; done {
		return false
	}
	line := string(trimEOL(e.lines[k.Line-1]))
	if k.Column < 1 || k.Column-1 > len(line) || strings.TrimSpace(line[:k.Column-1]) != "" {
		return false
	}
	rest := line[k.Column-1:]
	return strings.HasPrefix(rest, k.Value) && strings.Contains(rest, v.Value)
}

// applyLines writes the file with the line edits made.
func (e *netplanEditor) applyLines() []byte {
	var out []byte
	for i, line := range e.lines {
		text, edited := e.edits[i+1]
		switch {
		case !edited:
			out = append(out, line...)
		case text != nil:
			out = append(out, *text...)
			out = append(out, line[len(trimEOL(line)):]...)
		}
	}
	return out
}

// mapEntry finds key in a mapping node, without following aliases.
func mapEntry(m *yaml.Node, key string) (k, v *yaml.Node) {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Kind == yaml.ScalarNode && m.Content[i].Value == key {
			return m.Content[i], m.Content[i+1]
		}
	}
	return nil, nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	_, v := mapEntry(m, key)
	return v
}
