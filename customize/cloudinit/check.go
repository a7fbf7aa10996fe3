package cloudinit

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxVisits bounds the nodes one check looks at. Aliases let a small
// document name an exponential tree ("billion laughs"); PyYAML shares
// the objects, but a walk would not end, so such a document is refused.
const maxVisits = 200_000

// maxAliasChain bounds an alias that points at an alias.
const maxAliasChain = 64

// checker walks a YAML tree against a spec and collects problems.
type checker struct {
	problems []Problem
	notes    []Problem
	visits   *int
	// elsewhere names top-level keys that are not user-data but are read
	// from another place (system configuration), with where.
	elsewhere map[string]string
	exhausted bool
	dropped   int // problems past maxProblems
}

func newChecker() *checker { return &checker{visits: new(int)} }

func (c *checker) errorf(n *yaml.Node, format string, args ...any) {
	c.add(Problem{Line: n.Line, Message: fmt.Sprintf(format, args...)})
}

// maxProblems bounds the problems one document reports.
const maxProblems = 100

// add records a problem; past maxProblems they are only counted.
func (c *checker) add(p Problem) {
	if len(c.problems) < maxProblems {
		c.problems = append(c.problems, p)
	} else {
		c.dropped++
	}
}

func (c *checker) notef(n *yaml.Node, format string, args ...any) {
	if len(c.notes) >= maxProblems {
		return
	}
	c.notes = append(c.notes, Problem{Line: n.Line, Message: fmt.Sprintf(format, args...)})
}

// spend counts a visit; false once the budget is gone.
func (c *checker) spend(n *yaml.Node) bool {
	if c.exhausted {
		return false
	}
	*c.visits++
	if *c.visits > maxVisits {
		c.exhausted = true
		c.errorf(n, "the document expands (through aliases) to more than %d values; cloud-config this large is refused", maxVisits)
		return false
	}
	return true
}

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < maxAliasChain; i++ {
		n = n.Alias
	}
	return n
}

// at joins a path and a key for messages: "write_files[0].path".
func at(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// prefix is a path as the start of a message.
func prefix(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}

// got describes a value found, with a hint for YAML 1.1 surprises.
func got(n *yaml.Node, t jtype) string {
	if n.Kind != yaml.ScalarNode {
		return t.String()
	}
	v := quote(n.Value)
	if t != tString && len(n.Value) <= 40 {
		v = n.Value
	}
	s := fmt.Sprintf("%s (%s)", t, v)
	switch {
	case t == tInt && len(n.Value) > 1 && n.Value[0] == '0' && n.Value[1] != 'x' && n.Value[1] != 'b':
		s += `: YAML 1.1 reads a leading 0 as octal; quote it ('` + n.Value + `')`
	case t == tBool || t == tNull || t == tInt || t == tFloat || t == tOther:
		s += ": quote it if you mean the text"
	}
	return s
}

func (c *checker) check(n *yaml.Node, s *spec, path string) {
	if !c.spend(n) {
		return
	}
	n = deref(n)
	if n.Kind == yaml.AliasNode {
		c.errorf(n, "%san alias chain longer than %d", prefix(path), maxAliasChain)
		return
	}
	t, ok := nodeType(n)
	if !ok {
		c.errorf(n, "%stag %s is not one cloud-init accepts (it loads YAML with safe_load)", prefix(path), n.Tag)
		return
	}
	if s.deprecated != "" {
		c.notef(n, "%s is deprecated: %s", path, s.deprecated)
	}
	if len(s.alts) > 0 {
		c.checkEither(n, t, s, path)
		return
	}
	if s.types != 0 && s.types&t == 0 {
		c.errorf(n, "%sexpected %s, got %s", prefix(path), s.describe(), got(n, t))
		return
	}
	if len(s.enum) > 0 && n.Kind == yaml.ScalarNode {
		v := n.Value
		if t == tBool {
			v = boolValue(v)
		}
		if !slices.Contains(s.enum, v) {
			c.errorf(n, "%s%s is not %s", prefix(path), quote(n.Value), s.describe())
		}
	}
	switch t {
	case tList:
		c.checkList(n, s, path)
	case tMap:
		c.checkMap(n, s, path)
	}
}

// checkEither checks n against the alternatives whose types fit it:
// the first that finds nothing wrong wins; if all find problems, the
// first one's are reported.
func (c *checker) checkEither(n *yaml.Node, t jtype, s *spec, path string) {
	var fits []*spec
	for _, a := range s.alts {
		if a.types == 0 || a.types&t != 0 {
			fits = append(fits, a)
		}
	}
	if len(fits) == 0 {
		c.errorf(n, "%sexpected %s, got %s", prefix(path), s.describeAlts(), got(n, t))
		return
	}
	var first *checker
	for _, a := range fits {
		sub := &checker{visits: c.visits, elsewhere: c.elsewhere}
		sub.check(n, a, path)
		if len(sub.problems) == 0 {
			c.notes = append(c.notes, sub.notes...)
			return
		}
		if sub.exhausted {
			c.exhausted = true
			c.merge(sub)
			return
		}
		if first == nil {
			first = sub
		}
	}
	if len(fits) > 1 && n.Kind == yaml.ScalarNode {
		c.errorf(n, "%s%s is not %s", prefix(path), quote(n.Value), s.describeAlts())
		return
	}
	c.merge(first)
}

// merge takes a sub-checker's problems and notes.
func (c *checker) merge(sub *checker) {
	for _, p := range sub.problems {
		c.add(p)
	}
	c.dropped += sub.dropped
	c.notes = append(c.notes, sub.notes...)
}

// describeAlts is what an either accepts.
func (s *spec) describeAlts() string {
	var parts []string
	for _, a := range s.alts {
		d := a.describe()
		if len(a.alts) > 0 {
			d = a.describeAlts()
		}
		if !slices.Contains(parts, d) {
			parts = append(parts, d)
		}
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " or " + parts[len(parts)-1]
}

func (c *checker) checkList(n *yaml.Node, s *spec, path string) {
	if len(n.Content) < s.minItems {
		c.errorf(n, "%sexpected at least %d items, got %d", prefix(path), s.minItems, len(n.Content))
	}
	if s.items == nil {
		return
	}
	for i, item := range n.Content {
		c.check(item, s.items, fmt.Sprintf("%s[%d]", path, i))
		if c.exhausted {
			return
		}
	}
}

// pair is one key and value of a mapping.
type pair struct{ key, value *yaml.Node }

// pairs lists a mapping's entries with YAML merge keys ("<<: *base")
// expanded as PyYAML does: keys given in the mapping win over merged
// ones, earlier merged mappings over later ones.
func (c *checker) pairs(n *yaml.Node, depth int) []pair {
	var own, merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" && k.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
			merged = append(merged, c.mergeSources(v, depth)...)
			continue
		}
		own = append(own, pair{k, v})
	}
	if len(merged) == 0 {
		return own
	}
	have := map[string]bool{}
	for _, p := range own {
		have[deref(p.key).Value] = true
	}
	out := own
	for _, p := range merged {
		if k := deref(p.key).Value; !have[k] {
			have[k] = true
			out = append(out, p)
		}
	}
	return out
}

// mergeSources is the entries a merge key's value brings: a mapping, or
// a list of mappings.
func (c *checker) mergeSources(v *yaml.Node, depth int) []pair {
	v = deref(v)
	if depth > 8 || !c.spend(v) {
		return nil
	}
	switch v.Kind {
	case yaml.MappingNode:
		return c.pairs(v, depth+1)
	case yaml.SequenceNode:
		var out []pair
		for _, m := range v.Content {
			if m = deref(m); m.Kind != yaml.MappingNode {
				c.errorf(m, "a merge key (<<) takes mappings only")
				continue
			}
			out = append(out, c.pairs(m, depth+1)...)
		}
		return out
	}
	c.errorf(v, "a merge key (<<) takes a mapping or a list of mappings")
	return nil
}

func (c *checker) checkMap(n *yaml.Node, s *spec, path string) {
	seen := map[string]int{}
	for _, p := range c.pairs(n, 0) {
		if c.exhausted {
			return
		}
		k := deref(p.key)
		if kt, _ := nodeType(k); k.Kind != yaml.ScalarNode || kt != tString {
			c.errorf(k, "%skeys must be strings, got %s", prefix(path), got(k, kt))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			c.errorf(k, "%skey %s given twice (also on line %d); cloud-init would silently keep only the last", prefix(path), quote(k.Value), line)
			continue
		}
		seen[k.Value] = k.Line
		fs := s.fields[k.Value]
		if fs == nil {
			fs = s.values
		}
		if fs == nil {
			c.unknownKey(k, s, path)
			continue
		}
		c.check(p.value, fs, at(path, k.Value))
	}
	for _, r := range s.required {
		if _, ok := seen[r]; !ok {
			c.errorf(n, "%smissing required key %s", prefix(path), quote(r))
		}
	}
}

func (c *checker) unknownKey(k *yaml.Node, s *spec, path string) {
	if path == "" {
		if where, ok := c.elsewhere[k.Value]; ok {
			c.errorf(k, "key %s is not read from user-data: %s", quote(k.Value), where)
			return
		}
		msg := fmt.Sprintf("key %s is not a cloud-config key", quote(k.Value))
		if near := closest(k.Value, sortedKeys(s.fields)); near != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", quote(near))
		}
		c.add(Problem{Line: k.Line, Message: msg})
		return
	}
	known := sortedKeys(s.fields)
	msg := fmt.Sprintf("%sunknown key %s", prefix(path), quote(k.Value))
	if near := closest(k.Value, known); near != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", quote(near))
	} else if len(known) > 0 && len(known) <= 12 {
		msg += " (known: " + strings.Join(known, ", ") + ")"
	}
	c.add(Problem{Line: k.Line, Message: msg})
}

// sorted orders problems by line, keeping the order of those on one line.
func sorted(ps []Problem) []Problem {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	return ps
}
